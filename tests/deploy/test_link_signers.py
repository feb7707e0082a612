"""Presigned links are signed by their own principals: upload links by the upload user, download links
by the download user, never by the store's main (root) credentials when those are configured.

Against the moto server on loopback over real HTTP. moto does not check who signed a link (it
enforces no IAM by default), so these tests read the signer from the link itself: SigV4 puts the
signing access key id in ``X-Amz-Credential``, and S3 or MinIO applies that principal's policy when
the link is used. ``test_link_policies.py`` shows on an IAM-enforcing moto that those principals'
policies refuse everything outside their prefixes.
"""
from __future__ import annotations

import logging
import os
import urllib.request
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest

from include.campaign.store import ObjectStore, S3Settings, SigningKey

UPLOAD = SigningKey("clef-test-upload", "upload-secret-0123456789")
DOWNLOAD = SigningKey("clef-test-download", "download-secret-0123456789")
RUN_KEY = "imageclef2025/submissions/caption-prediction/team-a/run-01"
RELEASE_KEY = "imageclef2025/releases/caption-prediction/test/images.zip"


def signer_of(url: str) -> str:
    """The access key id that signed a SigV4 presigned URL."""
    credential = parse_qs(urlsplit(url).query)["X-Amz-Credential"][0]
    return credential.split("/", 1)[0]


@pytest.fixture
def signed_store(s3_settings, store) -> ObjectStore:
    """The test bucket, reached with the main credentials and with both link signers configured."""
    return ObjectStore(replace(s3_settings, upload_signer=UPLOAD, download_signer=DOWNLOAD))


def upload(url: str, data: bytes) -> int:
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status


def test_an_upload_link_is_signed_by_the_upload_principal_and_stores_the_run(signed_store):
    url = signed_store.presigned_put(RUN_KEY, 3600)
    assert signer_of(url) == UPLOAD.access_key_id
    assert urlsplit(url).path.endswith("/" + RUN_KEY)
    assert upload(url, b"run bytes\n") == 200
    assert signed_store.get_bytes(RUN_KEY) == b"run bytes\n"


def test_a_download_link_is_signed_by_the_download_principal_and_serves_the_file(signed_store):
    signed_store.put_bytes(RELEASE_KEY, b"released data")
    url = signed_store.presigned_get(RELEASE_KEY, 3600)
    assert signer_of(url) == DOWNLOAD.access_key_id
    with urllib.request.urlopen(url, timeout=30) as answer:
        assert answer.read() == b"released data"


def test_the_main_credentials_sign_no_link_once_signers_are_configured(signed_store, s3_settings, caplog):
    caplog.set_level(logging.WARNING, logger="include.campaign.store")
    links = [signed_store.presigned_put(RUN_KEY, 60), signed_store.presigned_get(RELEASE_KEY, 60)]
    assert [signer_of(url) for url in links] == [UPLOAD.access_key_id, DOWNLOAD.access_key_id]
    assert s3_settings.access_key_id not in {signer_of(url) for url in links}
    assert not caplog.records, "no warning when both signers are configured"
    # the store's own reads and writes still use the main credentials
    own = signed_store.client.generate_presigned_url("head_object", Params={"Bucket": signed_store.bucket, "Key": RUN_KEY}, ExpiresIn=60)
    assert signer_of(own) == s3_settings.access_key_id


def test_without_signers_the_main_credentials_sign_and_the_log_says_so(store, s3_settings, caplog):
    caplog.set_level(logging.WARNING, logger="include.campaign.store")
    for _ in range(3):
        put_url, get_url = store.presigned_put(RUN_KEY, 60), store.presigned_get(RELEASE_KEY, 60)
    assert signer_of(put_url) == signer_of(get_url) == s3_settings.access_key_id
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2, f"one warning per kind of link, not per link: {warnings}"
    assert any("Upload links" in text and "CLEF_S3_UPLOAD_ACCESS_KEY_ID" in text and "upload_access_key_id" in text for text in warnings)
    assert any("Download links" in text and "CLEF_S3_DOWNLOAD_ACCESS_KEY_ID" in text for text in warnings)


def test_only_a_missing_signer_falls_back(s3_settings, store, caplog):
    caplog.set_level(logging.WARNING, logger="include.campaign.store")
    half = ObjectStore(replace(s3_settings, upload_signer=UPLOAD))
    assert signer_of(half.presigned_put(RUN_KEY, 60)) == UPLOAD.access_key_id
    assert signer_of(half.presigned_get(RELEASE_KEY, 60)) == s3_settings.access_key_id
    assert [record.getMessage().split(" ", 1)[0] for record in caplog.records] == ["Download"]


CONNECTION = (
    '{"conn_type": "aws", "login": "root-key", "password": "root-secret", "extra": {"endpoint_url": "http://127.0.0.1:9", '
    '"upload_access_key_id": "up-key", "upload_secret_access_key": "up-secret"}}'
)


def test_signers_come_from_the_connection_extra_and_else_from_the_environment():
    environ = {
        "AIRFLOW_CONN_CLEF_S3": CONNECTION,
        "CLEF_S3_UPLOAD_ACCESS_KEY_ID": "env-up-key", "CLEF_S3_UPLOAD_SECRET_ACCESS_KEY": "env-up-secret",
        "CLEF_S3_DOWNLOAD_ACCESS_KEY_ID": "env-down-key", "CLEF_S3_DOWNLOAD_SECRET_ACCESS_KEY": "env-down-secret",
    }
    settings = S3Settings.from_env(environ)
    assert (settings.access_key_id, settings.secret_access_key) == ("root-key", "root-secret")
    assert settings.upload_signer == SigningKey("up-key", "up-secret"), "the extra wins over the environment"
    assert settings.download_signer == SigningKey("env-down-key", "env-down-secret"), "the environment fills what the extra lacks"
    assert "secret" not in repr(settings), "no secret in a settings repr (logs, tracebacks)"


def test_signers_from_the_environment_without_a_connection():
    environ = {"AWS_ACCESS_KEY_ID": "root", "AWS_SECRET_ACCESS_KEY": "root-secret",
               "CLEF_S3_DOWNLOAD_ACCESS_KEY_ID": "down", "CLEF_S3_DOWNLOAD_SECRET_ACCESS_KEY": "down-secret"}
    settings = S3Settings.from_env(environ)
    assert settings.download_signer == SigningKey("down", "down-secret")
    assert settings.upload_signer is None


def test_a_signer_without_its_secret_is_no_signer():
    settings = S3Settings.from_env({"AWS_ACCESS_KEY_ID": "root", "AWS_SECRET_ACCESS_KEY": "s", "CLEF_S3_UPLOAD_ACCESS_KEY_ID": "up"})
    assert settings.upload_signer is None


def test_the_demo_stack_signs_links_with_its_own_principals():
    from devtools.devstack import s3_connection_json

    settings = S3Settings.from_connection_json(s3_connection_json("http://127.0.0.1:9"), "b", environ={})
    assert settings.upload_signer and settings.download_signer
    keys = {settings.access_key_id, settings.upload_signer.access_key_id, settings.download_signer.access_key_id}
    assert len(keys) == 3, "three distinct principals"
    assert os.environ.get("AWS_ACCESS_KEY_ID") not in keys - {settings.access_key_id}
