"""Run collection at a deadline set to the present, so the store's real upload times decide what is late."""
from __future__ import annotations

import datetime as dt
import hashlib
import time

import pytest

from include.campaign.collection import CollectionError, collect
from tests.lifecycle.conftest import UTC, bucket_state, context_with, make_campaign, now_utc, register


def _wait_for_next_second() -> dt.datetime:
    """Sleep past the current second (the store's timestamps have 1-second resolution); return that second."""
    time.sleep(1.1)
    return now_utc().replace(microsecond=0)


def test_collection_freezes_pre_deadline_versions_and_reports_late_refused_and_over_limit_runs(ctx, store, mailbox):
    one = register(ctx, "Team One", "one@team.example.org", ["beta"])
    two = register(ctx, "Team Two", "two@team.example.org", ["beta"])
    register(ctx, "Alpha Only", "alpha-only@team.example.org", ["alpha"])
    submissions = ctx.layout.submissions("beta")
    store.put_bytes(f"{submissions}{one}/run-01", b"first version")
    store.put_bytes(f"{submissions}{one}/run-02", b"kept as is")
    for number in range(1, 5):  # four runs where three are allowed
        store.put_bytes(f"{submissions}{two}/run-0{number}", f"two {number}".encode())
    store.put_bytes(f"{submissions}ghost/run-01", b"not registered")
    store.put_bytes(f"{submissions}alpha-only/run-01", b"registered for another task")
    deadline = _wait_for_next_second()  # every upload so far is at or before this second
    _wait_for_next_second()
    store.put_bytes(f"{submissions}{one}/run-01", b"overwritten after the deadline")
    store.put_bytes(f"{submissions}{one}/run-03", b"too late")
    at_deadline = context_with(ctx, make_campaign(deadline - dt.timedelta(days=2), beta={"run_deadline": deadline}))
    mailbox.clear()

    manifest = collect(at_deadline, "beta")

    assert manifest["deadline"] == deadline.astimezone(UTC).isoformat()
    collected = {(e["team"], e["run"]): e for e in manifest["collected"]}
    assert sorted(collected) == [(one, "run-01"), (one, "run-02"), (two, "run-02"), (two, "run-03"), (two, "run-04")]
    frozen = store.get_bytes(ctx.layout.collected("beta") + f"{one}/run-01")
    assert frozen == b"first version"
    assert collected[(one, "run-01")]["sha256"] == hashlib.sha256(b"first version").hexdigest() and collected[(one, "run-01")]["size"] == 13
    assert store.get_bytes(collected[(one, "run-01")]["key"], None) == frozen
    assert sorted((e["team"], e["run"]) for e in manifest["late"]) == [(one, "run-01"), (one, "run-03")]
    assert [(e["team"], e["run"]) for e in manifest["dropped_over_limit"]] == [(two, "run-01")]
    refused = {e["team"]: e["reason"] for e in manifest["refused"]}
    assert refused == {"ghost": "no registered team 'ghost'", "alpha-only": "team alpha-only is not registered for beta"}
    assert store.get_json(ctx.layout.collection_manifest("beta")) == {k: v for k, v in manifest.items() if k not in ("manifest_key", "receipts", "mail")}

    receipts = {m.recipients[0]: m.body.replace("\r\n", "\n") for m in mailbox.messages}
    assert set(receipts) == {"one@team.example.org", "two@team.example.org", "alpha-only@team.example.org"}
    assert "We collected 2 run(s)" in receipts["one@team.example.org"] and "Uploaded after the deadline, not collected:\n  - run-01" in receipts["one@team.example.org"]
    assert "Over the limit of 3 runs, dropped (your most recent runs were kept):\n  - run-01" in receipts["two@team.example.org"]
    assert "We collected no run" in receipts["alpha-only@team.example.org"] and "team alpha-only is not registered for beta" in receipts["alpha-only@team.example.org"]

    count, before = len(mailbox.messages), bucket_state(store)
    assert collect(at_deadline, "beta")["collected"] == manifest["collected"]
    assert len(mailbox.messages) == count and bucket_state(store) == before


def test_collecting_before_the_deadline_is_refused(ctx):
    with pytest.raises(CollectionError, match=r"beta: the run deadline .* has not passed yet"):
        collect(ctx, "beta")
