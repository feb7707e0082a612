"""Create the campaign bucket with versioning on, through the `clef_s3` connection the DAGs use.

docker-compose's airflow-init runs it once, after the database migration; on Kubernetes run it once
by hand (docs/cluster.md). It reads ``AIRFLOW_CONN_CLEF_S3`` and ``CLEF_BUCKET`` with the same code
as the DAGs (``include.campaign.store``), so a wrong key or endpoint stops the deployment here, with
one line naming the bucket, the endpoint and the reason, instead of at the first milestone.

Running it again changes nothing. Versioning is per bucket on MinIO and S3 (there is no per-prefix
switch), so the whole bucket is versioned; run collection relies on it for ``<campaign>/submissions/``.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from include.campaign.store import ObjectStore, S3Settings, StoreError

CONNECTION_VARIABLE = "AIRFLOW_CONN_CLEF_S3"


class BucketSetupError(Exception):
    """The bucket could not be made ready; the message says which setting or call failed."""


def settings_from(environ: Mapping[str, str]) -> S3Settings:
    text = environ.get(CONNECTION_VARIABLE, "").strip()
    if not text.startswith("{"):
        raise BucketSetupError(f"{CONNECTION_VARIABLE} must hold the `clef_s3` connection as JSON (see .env.example); it is {'empty' if not text else 'not JSON'}.")
    try:
        return S3Settings.from_env(dict(environ))
    except StoreError as exc:  # a bound that is not a number
        raise BucketSetupError(str(exc)) from None
    except ValueError as exc:  # json.JSONDecodeError
        raise BucketSetupError(f"{CONNECTION_VARIABLE} is not valid JSON: {exc}") from None


def ensure_campaign_bucket(environ: Mapping[str, str]) -> str:
    """Make the bucket of the environment's connection exist with versioning enabled; returns a one-line report."""
    return ensure_versioned_bucket(settings_from(environ))


def ensure_versioned_bucket(settings: S3Settings) -> str:
    """Make the settings' bucket exist with versioning enabled, checked; returns a one-line report."""
    where = f"s3://{settings.bucket} at {settings.endpoint_url or 'AWS S3'}"
    try:
        store = ObjectStore(settings)
        store.ensure_bucket(versioning=True)
        status = store.versioning_status()
    except StoreError as exc:
        raise BucketSetupError(str(exc)) from None
    if status != "Enabled":
        raise BucketSetupError(f"{where}: versioning is {status or 'off'} after enabling it; run collection needs it on.")
    return f"{where} is ready, versioning enabled."


def main(environ: Mapping[str, str] | None = None) -> int:
    try:
        report = ensure_campaign_bucket(os.environ if environ is None else environ)
    except BucketSetupError as exc:
        print(f"ensure_bucket: {exc}", file=sys.stderr)
        return 1
    print(f"ensure_bucket: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
