"""Where the campaign files are, and the campaign context built from Airflow-style connection fields.

The DAG files, the organizers' Campaigns page (an Airflow plugin) and the command line all find the
campaigns the same way: every ``*.yaml`` in ``CLEF_CAMPAIGNS_DIR`` (default ``include/campaigns/``)
whose name does not start with ``_``. This module imports no Airflow: callers hand in the fields of
their ``clef_s3`` and ``smtp_default`` connections.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from include.campaign.config import load_campaign
from include.campaign.context import CampaignContext
from include.campaign.mail import SmtpSettings
from include.campaign.store import ObjectStore, S3Settings

DEFAULT_CAMPAIGNS_DIR = Path(__file__).resolve().parents[1] / "campaigns"
S3_CONN_ID = "clef_s3"
SMTP_CONN_ID = "smtp_default"


class ConnectionFields(Protocol):
    """What an Airflow connection (SDK or ORM) offers: enough to build the store and mail settings."""

    host: str | None
    port: int | None
    login: str | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def campaigns_dir() -> Path:
    return Path(os.environ.get("CLEF_CAMPAIGNS_DIR") or DEFAULT_CAMPAIGNS_DIR)


def campaign_files() -> list[Path]:
    return sorted(p for p in campaigns_dir().glob("*.yaml") if not p.name.startswith("_"))


def context_from_connections(campaign_file: str | Path, s3: ConnectionFields, smtp: ConnectionFields) -> CampaignContext:
    """The campaign, the store and the mailer from the two connections' fields."""
    bucket = os.environ.get("CLEF_BUCKET", "clef-campaign")
    s3_settings = S3Settings.from_connection(bucket=bucket, login=s3.login, password=s3.password, extra=s3.extra_dejson)
    smtp_settings = SmtpSettings.from_connection(host=smtp.host, port=smtp.port, login=smtp.login, password=smtp.password, extra=smtp.extra_dejson)
    return CampaignContext(load_campaign(campaign_file), ObjectStore(s3_settings), smtp_settings)
