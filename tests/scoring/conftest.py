"""Fixtures of the scoring tests: the demo campaign and contexts over the real moto S3 and SMTP servers."""
from __future__ import annotations

import pytest

from include.campaign.config import parse_campaign
from include.campaign.context import CampaignContext
from include.campaign.mail import SmtpSettings
from scoring_fixtures import CAMPAIGN_YAML


@pytest.fixture
def campaign():
    return parse_campaign(CAMPAIGN_YAML, "democlef.yaml")


@pytest.fixture
def ctx(store, campaign):
    """A context whose SMTP server is not used (scoring sends no mail)."""
    return CampaignContext(campaign, store, SmtpSettings(host="127.0.0.1", port=9, attempts=1))


@pytest.fixture
def mail_ctx(store, campaign, smtp_settings):
    return CampaignContext(campaign, store, smtp_settings)
