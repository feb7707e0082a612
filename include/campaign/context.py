"""Everything a stage needs to act on one campaign: the config, the store, the key layout, the outbox, the clock.

DAG tasks build a :class:`CampaignContext` from Airflow connections; tests and the command line build
it from settings. Domain functions take it as their first argument and never look anything up
themselves, so the same function runs under Airflow, in a test, or from the shell.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from include.campaign.config import Campaign, load_campaign
from include.campaign.layout import Layout
from include.campaign.mail import Outbox, SmtpSender, SmtpSettings
from include.campaign.store import ObjectStore, S3Settings


MODEL_DIR_VARIABLE = "CLEF_MODEL_DIR"


def model_dir_from_env(environ=None) -> Path | None:
    """The model directory (``CLEF_MODEL_DIR``): where model-based metrics find their weights; None when unset."""
    value = (os.environ if environ is None else environ).get(MODEL_DIR_VARIABLE, "").strip()
    return Path(value) if value else None


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class CampaignContext:
    campaign: Campaign
    store: ObjectStore
    smtp: SmtpSettings
    clock: Callable[[], dt.datetime] = field(default=utc_now)
    model_dir: Path | None = None  # <model_dir>/<model name> holds each model's weights (CLEF_MODEL_DIR)

    @property
    def layout(self) -> Layout:
        return Layout(self.campaign.id)

    @property
    def outbox(self) -> Outbox:
        return Outbox(self.store, self.layout, SmtpSender(self.smtp))

    def now(self) -> dt.datetime:
        return self.clock()

    @classmethod
    def from_settings(cls, campaign_file: str | Path, s3: S3Settings, smtp: SmtpSettings,
                      model_dir: str | Path | None = None) -> "CampaignContext":
        return cls(load_campaign(campaign_file), ObjectStore(s3), smtp, model_dir=Path(model_dir) if model_dir else None)

    @classmethod
    def from_env(cls, campaign_file: str | Path) -> "CampaignContext":
        return cls.from_settings(campaign_file, S3Settings.from_env(), SmtpSettings.from_env(), model_dir_from_env())
