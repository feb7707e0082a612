"""A run far over the task's ``max_bytes`` is refused at collection from the listing: never read, hashed or copied."""
from __future__ import annotations

import datetime as dt
import time

from include.campaign.collection import collect
from include.campaign.config import RunLimits
from tests.hardening.s3_calls import S3CallCounter
from tests.lifecycle.conftest import context_with, make_campaign, now_utc, register


def test_an_oversized_run_is_refused_from_its_listed_size_with_a_receipt_line(ctx, store, mailbox):
    team = register(ctx, "Big Uploads", "big@team.example.org", ["beta"])
    limit = 4096
    submissions = ctx.layout.submissions("beta")
    store.put_bytes(f"{submissions}{team}/run-01", b"a fine run\n")
    oversized = bytes(range(256)) * (limit // 256 * 3)  # generated here: three times the limit
    store.put_bytes(f"{submissions}{team}/run-02", oversized)
    time.sleep(1.1)
    deadline = now_utc().replace(microsecond=0)
    campaign = make_campaign(deadline - dt.timedelta(days=2), beta={"run_deadline": deadline})
    campaign = campaign.model_copy(update={"run_limits": RunLimits(max_bytes=limit)})
    at_deadline = context_with(ctx, campaign)
    mailbox.clear()

    with S3CallCounter(store) as calls:
        manifest = collect(at_deadline, "beta")

    assert [(e["team"], e["run"]) for e in manifest["collected"]] == [(team, "run-01")]
    [refused] = manifest["refused"]
    assert (refused["team"], refused["run"], refused["size"]) == (team, "run-02", len(oversized))
    assert f"{len(oversized):,} bytes" in refused["reason"] and f"{limit:,} bytes" in refused["reason"] and "max_bytes" in refused["reason"]
    assert calls.count("GetObject", "run-02") == 0 and calls.count("CopyObject", "run-02") == 0
    assert not store.exists(ctx.layout.collected("beta") + f"{team}/run-02")
    [receipt] = [m for m in mailbox.messages if m.recipients == ["big@team.example.org"]]
    body = receipt.body.replace("\r\n", "\n")
    assert "Refused:\n  - run-02: " in body and f"over this task's size limit of {limit:,} bytes" in body

    # a second collection changes nothing and sends nothing twice
    count = len(mailbox.messages)
    assert collect(at_deadline, "beta")["refused"] == manifest["refused"]
    assert len(mailbox.messages) == count
