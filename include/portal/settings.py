"""The portal's settings, from the environment (the same variables the DAGs and the demo use).

- campaign files: ``CLEF_CAMPAIGNS_DIR`` (default ``include/campaigns``), every ``*.yaml`` not starting with ``_``;
- object store: :meth:`S3Settings.from_env` (``AIRFLOW_CONN_CLEF_S3`` or ``CLEF_S3_ENDPOINT``/``AWS_*``, ``CLEF_BUCKET``),
  and ``CLEF_S3_PUBLIC_ENDPOINT`` when participants reach the store at another address than the portal;
- mail: :meth:`SmtpSettings.from_env`;
- ``CLEF_PORTAL_SECRET`` (at least 32 characters, never committed) signs tokens and form keys;
  ``CLEF_PORTAL_URL`` is the portal's public address, used in e-mailed links;
- ``CLEF_PORTAL_SECURE_COOKIES=1`` behind TLS.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from include.campaign.mail import SmtpSettings
from include.campaign.store import S3Settings

DEFAULT_CAMPAIGNS_DIR = Path(__file__).resolve().parents[1] / "campaigns"


@dataclass(frozen=True)
class Limits:
    """Sizes and rates the portal enforces before it reads or stores anything."""

    form_bytes: int = 16 * 1024  # every form but registration
    agreement_bytes: int = 5 * 1024 * 1024  # one signed agreement PDF
    registration_bytes: int = 12 * 1024 * 1024  # the whole registration form, agreements included
    field_chars: int = 400  # one text field, before the schema's own limits
    registrations_per_hour: int = 10  # per client address
    sign_in_requests_per_hour: int = 10  # per client address
    download_link_seconds: int = 600
    upload_form_seconds: int = 3600
    files_listed: int = 20


@dataclass(frozen=True)
class PortalSettings:
    campaigns_dir: Path
    s3: S3Settings
    smtp: SmtpSettings
    secret: str = field(repr=False)
    public_s3_endpoint: str | None = None
    secure_cookies: bool = False
    limits: Limits = Limits()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "PortalSettings":
        env = os.environ if environ is None else environ
        return cls(
            campaigns_dir=Path(env.get("CLEF_CAMPAIGNS_DIR") or DEFAULT_CAMPAIGNS_DIR),
            s3=S3Settings.from_env(env),
            smtp=SmtpSettings.from_env(env),
            secret=env.get("CLEF_PORTAL_SECRET", ""),
            public_s3_endpoint=env.get("CLEF_S3_PUBLIC_ENDPOINT") or None,
            secure_cookies=env.get("CLEF_PORTAL_SECURE_COOKIES", "").strip().lower() in ("1", "true", "yes"),
        )

    def signing_s3(self) -> S3Settings:
        """The store's settings for presigning links participants open (its public address)."""
        return replace(self.s3, endpoint_url=self.public_s3_endpoint) if self.public_s3_endpoint else self.s3
