"""Fixtures of the fault tests: a misbehaving S3 endpoint in front of the moto server, and a store
that reaches the bucket through it with short bounds (1 s to connect, 1 s per read, 2 attempts)."""
from __future__ import annotations

import pytest

from include.campaign.context import CampaignContext
from include.campaign.store import ObjectStore, S3Settings
from tests.faults.s3_faults import FaultyS3
from tests.lifecycle.conftest import ctx  # noqa: F401  (fixture: the lifecycle campaign over the direct store)

BOUNDS = {"connect_timeout": 1.0, "read_timeout": 1.0, "max_attempts": 2}
# One call gives up after 2 attempts of at most 1 s each plus botocore's backoff (< 1 s); a stage
# stops at its first failing call. The bound below leaves room for a loaded 2-core machine.
STAGE_BOUND_SECONDS = 20


@pytest.fixture(scope="session")
def faulty_s3(s3_endpoint):
    proxy = FaultyS3(s3_endpoint, hang_seconds=15).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def faults(faulty_s3):
    faulty_s3.heal()
    yield faulty_s3
    faulty_s3.heal()


@pytest.fixture
def faulty_store(faults, s3_settings):
    """The test's bucket, reached through the misbehaving endpoint."""
    settings = S3Settings(bucket=s3_settings.bucket, endpoint_url=faults.endpoint, access_key_id=s3_settings.access_key_id,
                          secret_access_key=s3_settings.secret_access_key, **BOUNDS)
    return ObjectStore(settings)


@pytest.fixture
def faulty_ctx(ctx, faulty_store) -> CampaignContext:  # noqa: F811
    """The lifecycle campaign, its store calls going through the misbehaving endpoint."""
    return CampaignContext(ctx.campaign, faulty_store, ctx.smtp, ctx.clock)
