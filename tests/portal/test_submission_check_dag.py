"""``<campaign>_submission_check`` under real Airflow (``dag.test()``), over the moto S3 server and aiosmtpd:
a valid and an invalid upload get one receipt and one e-mail each; a second run adds nothing."""
from __future__ import annotations

import json
import os

import pytest

from include.campaign.registration import intake

from tests.portal.conftest import registration_fields, stage_and_release, valid_run

pytestmark = pytest.mark.airflow


def test_the_dag_writes_receipts_and_mails_each_version_once(campaign_file, ctx, store, mailbox, airflow_home, monkeypatch):
    from devtools.dag_driver import DagDriver

    from devtools.demo.submit import confirm_on_submission

    monkeypatch.setenv("CLEF_RETRY_DELAY_SECONDS", "1")
    monkeypatch.setenv("CLEF_CAMPAIGNS_DIR", os.environ.get("CLEF_CAMPAIGNS_DIR", ""))  # restored after the driver sets it
    key, raw = ctx.layout.registrations_inbox() + "beta.json", json.dumps(registration_fields(tasks=["beta"])).encode()
    store.put_bytes(key, raw)
    confirm_on_submission(ctx, key, raw, "lead@alpha.example.org", "test")
    team_id = intake(ctx)["accepted"][0]["team_id"]
    stage_and_release(ctx, "beta", "test")
    store.put_bytes(ctx.layout.submissions("beta", team_id) + "run-01", valid_run())
    store.put_bytes(ctx.layout.submissions("beta", team_id) + "run-02", b"img-001,5\n")
    before = len(mailbox.messages)

    driver = DagDriver(campaign_file.parent)
    first = driver.run("portallab_submission_check")
    assert first.ok, first.failed_tasks()
    receipts = store.list_keys(ctx.layout.receipts("beta", team_id))
    assert len(receipts) == 2
    subjects = sorted(m.subject for m in mailbox.messages[before:])
    assert subjects == ["Portal Lab 2026: beta run-01 received, valid", "Portal Lab 2026: beta run-02 received, INVALID"]

    second = driver.run("portallab_submission_check")
    assert second.ok and len(mailbox.messages) == before + 2
    assert store.list_keys(ctx.layout.receipts("beta", team_id)) == receipts
