"""Everything a stage needs to act on one campaign: the config, the store, the key layout, the outbox, the
clock and the deployment's settings.

DAG tasks build a :class:`CampaignContext` from Airflow connections; tests and the command line build
it from settings. Domain functions take it as their first argument and never look anything up
themselves, so the same function runs under Airflow, in a test, or from the shell. The deployment
settings the domain needs (:class:`Settings`) are read from the environment here and nowhere deeper.
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


MODEL_DIR_VARIABLE = "CLEF_MODEL_DIR"  # where the models worker finds the weights (<model_dir>/<model name>)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class Settings:
    """The deployment's settings the domain reads, from the environment (each unset by default).

    ``public_base_url`` (``CLEF_PUBLIC_BASE_URL``): published leaderboards are linked under it
    instead of presigned links; ``code_version`` (``CLEF_CODE_VERSION``): the scoring code's version
    in lineages (else the git commit); ``model_dir`` (``CLEF_MODEL_DIR``): where model-based metrics
    find their weights; ``scoring_max_instances`` (``CLEF_SCORING_MAX_INSTANCES``): mapped scoring
    instances per queue (docs/scoring-batches.md).
    """

    public_base_url: str | None = None
    code_version: str | None = None
    model_dir: str | None = None
    scoring_max_instances: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        return cls(public_base_url=env.get("CLEF_PUBLIC_BASE_URL") or None, code_version=env.get("CLEF_CODE_VERSION") or None,
                   model_dir=env.get(MODEL_DIR_VARIABLE, "").strip() or None, scoring_max_instances=env.get("CLEF_SCORING_MAX_INSTANCES") or None)


@dataclass
class CampaignContext:
    campaign: Campaign
    store: ObjectStore
    smtp: SmtpSettings
    clock: Callable[[], dt.datetime] = field(default=utc_now)
    settings: Settings = field(default_factory=Settings.from_env)

    @property
    def layout(self) -> Layout:
        return Layout(self.campaign.id)

    @property
    def outbox(self) -> Outbox:
        return Outbox(self.store, self.layout, SmtpSender(self.smtp))

    def now(self) -> dt.datetime:
        return self.clock()

    @classmethod
    def from_settings(cls, campaign_file: str | Path, s3: S3Settings, smtp: SmtpSettings) -> "CampaignContext":
        return cls(load_campaign(campaign_file), ObjectStore(s3), smtp)

    @classmethod
    def from_env(cls, campaign_file: str | Path) -> "CampaignContext":
        return cls.from_settings(campaign_file, S3Settings.from_env(), SmtpSettings.from_env())
