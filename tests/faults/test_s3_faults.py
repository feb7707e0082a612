"""S3 that fails on purpose: every call and every stage ends within its bound with a StoreError,
nothing is lost, and a re-run once the endpoint is healthy completes as if nothing had happened.

The endpoint is a real HTTP server on loopback (``s3_faults.FaultyS3``) in front of the moto
server: it answers 503, hangs without a byte, or resets the connection; ``only`` spoils just the
requests for one part of the bucket, so a stage fails halfway through its writes.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import time

import pytest

from include.campaign import results, evaluation
from include.campaign.collection import collect
from include.campaign.context import CampaignContext
from include.campaign.registration import intake
from include.campaign.release import release
from include.campaign.store import ObjectStore, S3Settings, StoreError
from tests.faults.conftest import BOUNDS, STAGE_BOUND_SECONDS
from tests.lifecycle.conftest import bucket_state, context_with, make_campaign, now_utc, register, registration, stage, submit

MODES = ["5xx", "hang", "reset"]
REASONS = {
    "5xx": "the endpoint answered HTTP 503",  # "SlowDown" too, where the answer has a body (not to HEAD)
    "hang": "no answer within 1 s, the endpoint accepted the connection but hangs",
    "reset": "the connection was closed or reset (after 2 attempt(s))",
}
# one call: 2 attempts of at most connect + read seconds, plus backoff
CALL_BOUND_SECONDS = BOUNDS["max_attempts"] * (BOUNDS["connect_timeout"] + BOUNDS["read_timeout"]) + 3


class Timer:
    def __enter__(self) -> "Timer":
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.monotonic() - self.started


# --- single calls ----------------------------------------------------------------------------------

CALLS = {
    "read": lambda store: store.get_bytes("lifecycle/some/object"),
    "write": lambda store: store.put_bytes("lifecycle/some/new-object", b"data"),
    "create": lambda store: store.create_once("lifecycle/outbox/x", b"marker"),
    "inspect": lambda store: store.head("lifecycle/some/object"),
    "list": lambda store: store.list_keys("lifecycle/"),
    "list versions of": lambda store: store.list_versions("lifecycle/"),
    "checksum": lambda store: store.sha256("lifecycle/some/object"),
    "copy lifecycle/some/object to": lambda store: store.copy("lifecycle/some/object", "lifecycle/some/copy"),
    "delete": lambda store: store.delete("lifecycle/some/object"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("action", list(CALLS))
def test_every_store_call_ends_within_its_bound_with_a_store_error(store, faulty_store, faults, mode, action):
    store.put_bytes("lifecycle/some/object", b"x" * 10_000)
    faults.misbehave(mode)
    with Timer() as timer, pytest.raises(StoreError) as raised:
        CALLS[action](faulty_store)
    assert timer.seconds < CALL_BOUND_SECONDS, f"{action} took {timer.seconds:.1f} s"
    message = str(raised.value)
    assert message.startswith(f"cannot {action} s3://{store.bucket}/lifecycle/"), message
    assert f"at {faults.endpoint}: " in message and REASONS[mode] in message and message.endswith("(after 2 attempt(s))"), message
    assert faults.spoiled() == BOUNDS["max_attempts"]  # retried, and no more than the bound
    faults.heal()
    assert store.get_bytes("lifecycle/some/object") == b"x" * 10_000  # nothing lost


@pytest.mark.parametrize("mode", MODES)
def test_the_quick_listing_ends_within_its_bound_with_the_same_store_error(store, faulty_store, faults, mode):
    store.put_bytes("lifecycle/some/object", b"x")
    faults.misbehave(mode)
    with Timer() as timer, pytest.raises(StoreError) as raised:
        faulty_store.scan("lifecycle/")
    assert timer.seconds < CALL_BOUND_SECONDS, f"scan took {timer.seconds:.1f} s"
    message = str(raised.value)
    assert message.startswith(f"cannot list s3://{store.bucket}/lifecycle/"), message
    assert f"at {faults.endpoint}: " in message and REASONS[mode] in message and message.endswith("(after 2 attempt(s))"), message
    assert faults.spoiled() == BOUNDS["max_attempts"]  # retried, and no more than the bound
    faults.heal()
    assert [info.key for info in faulty_store.scan("lifecycle/")] == ["lifecycle/some/object"]


def test_a_body_broken_off_midway_is_read_again(store, faulty_store, faults):
    data = bytes(range(256)) * 4096
    store.put_bytes("lifecycle/big", data)
    faults.misbehave("cut", times=1)
    assert faulty_store.sha256("lifecycle/big") == hashlib.sha256(data).hexdigest()
    faults.misbehave("cut", times=1)
    assert faulty_store.get_bytes("lifecycle/big") == data
    faults.misbehave("cut")
    with pytest.raises(StoreError, match="the connection broke while the object was being read"):
        faulty_store.get_bytes("lifecycle/big")


def test_a_json_body_broken_off_is_read_again_within_the_bound(store, faulty_store, faults):
    store.put_json("lifecycle/record.json", {"items": list(range(50_000))})
    faults.misbehave("cut", times=1)
    assert faulty_store.get_json_or_none("lifecycle/record.json") == {"items": list(range(50_000))}
    faults.misbehave("cut")
    with pytest.raises(StoreError, match="the connection broke while the object was being read"):
        faulty_store.get_json_or_none("lifecycle/record.json")
    assert faults.spoiled() == BOUNDS["max_attempts"]  # retried, and no more than the bound


def test_an_unreachable_endpoint_fails_fast_with_the_reason(s3_settings):
    dead = ObjectStore(S3Settings(bucket=s3_settings.bucket, endpoint_url="http://127.0.0.1:9", access_key_id="k", secret_access_key="s", **BOUNDS))
    with Timer() as timer, pytest.raises(StoreError, match=r"cannot list s3://.* at http://127\.0\.0\.1:9: cannot connect, connection refused or host unreachable \(after 2 attempt\(s\)\)"):
        dead.list_keys("x/")
    assert timer.seconds < CALL_BOUND_SECONDS


def test_bounds_come_from_the_connection_extra_or_the_environment():
    settings = S3Settings.from_connection(bucket="b", login="k", password="s", extra={"connect_timeout": "2", "read_timeout": 7}, environ={"CLEF_S3_MAX_ATTEMPTS": "4"})
    assert (settings.connect_timeout, settings.read_timeout, settings.max_attempts) == (2.0, 7.0, 4)
    config = settings.client_config()
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (2.0, 7.0, 4)
    defaults = S3Settings.from_env({"CLEF_S3_ENDPOINT": "http://minio:9000"})
    assert (defaults.connect_timeout, defaults.read_timeout, defaults.max_attempts) == (5.0, 30.0, 3)
    with pytest.raises(StoreError, match="read_timeout .* must be a number"):
        S3Settings.from_connection(bucket="b", login=None, password=None, extra={"read_timeout": "soon"}, environ={})


# --- stages ----------------------------------------------------------------------------------------


def _fails_within_bound(mode: str, action) -> StoreError:
    with Timer() as timer, pytest.raises(StoreError) as raised:
        action()
    assert timer.seconds < STAGE_BOUND_SECONDS, f"the stage took {timer.seconds:.1f} s"
    assert REASONS[mode] in str(raised.value) and str(raised.value).endswith("(after 2 attempt(s))"), raised.value
    return raised.value


@pytest.mark.parametrize("mode", MODES)
def test_intake_stops_within_bound_keeps_the_inbox_and_completes_on_rerun(ctx, faulty_ctx, faults, mailbox, mode):
    for number in (1, 2):
        submit(ctx, f"team-{number}.json", registration(f"Fault Team {number}", f"f{number}@team.example.org", ["beta"]))
    inbox = ctx.store.list_keys(ctx.layout.registrations_inbox())
    faults.misbehave(mode)
    _fails_within_bound(mode, lambda: intake(faulty_ctx))
    faults.heal()
    assert ctx.store.list_keys(ctx.layout.registrations_inbox()) == inbox  # nothing lost
    assert mailbox.messages == []

    outcome = intake(faulty_ctx)
    assert sorted(item["team_id"] for item in outcome["accepted"]) == ["fault-team-1", "fault-team-2"]
    assert sorted(m.recipients[0] for m in mailbox.messages) == ["f1@team.example.org", "f2@team.example.org"]
    assert intake(faulty_ctx)["accepted"] == [] and len(mailbox.messages) == 2


@pytest.mark.parametrize("mode", MODES)
def test_release_fails_halfway_within_bound_and_a_rerun_publishes_everything_once(ctx, faulty_ctx, faults, mailbox, mode):
    register(ctx, "Release Team", "release@team.example.org", ["beta"])
    files = {f"images/{n}.png": b"\x89PNG" + bytes([n]) * 300 for n in range(1, 6)}
    stage(ctx, "beta", "dev", files)
    mailbox.clear()
    faults.misbehave(mode, only="/releases/")  # staging reads fine; publishing breaks
    _fails_within_bound(mode, lambda: release(faulty_ctx, "beta", "dev"))
    faults.heal()
    assert mailbox.messages == []  # no links to files that are not there

    outcome = release(faulty_ctx, "beta", "dev")
    assert sorted(outcome["released"]) == sorted(files) and outcome["teams_notified"] == ["release-team"]
    released = ctx.layout.releases("beta", "dev")
    assert {key[len(released):]: ctx.store.get_bytes(key) for key in ctx.store.list_keys(released)} == files
    assert [m.recipients[0] for m in mailbox.messages] == ["release@team.example.org"]
    before = bucket_state(ctx.store)
    release(faulty_ctx, "beta", "dev")
    assert bucket_state(ctx.store) == before and len(mailbox.messages) == 1


@pytest.mark.parametrize("mode", MODES)
def test_collection_fails_halfway_within_bound_and_a_rerun_collects_the_same_runs(ctx, faulty_ctx, faults, mailbox, mode):
    teams = [register(ctx, f"Collect Team {n}", f"c{n}@team.example.org", ["beta"]) for n in (1, 2)]
    submissions = ctx.layout.submissions("beta")
    runs = {(team, f"run-0{n}"): f"{team} run {n}\n".encode() for team in teams for n in (1, 2)}
    for (team, run), data in runs.items():
        ctx.store.put_bytes(f"{submissions}{team}/{run}", data)
    time.sleep(1.1)
    deadline = now_utc().replace(microsecond=0)
    campaign = make_campaign(deadline - dt.timedelta(days=2), beta={"run_deadline": deadline})
    at_deadline = context_with(faulty_ctx, campaign)
    mailbox.clear()
    faults.misbehave(mode, only="/collected/")  # the listing works; freezing the copies breaks
    _fails_within_bound(mode, lambda: collect(at_deadline, "beta"))
    faults.heal()
    assert mailbox.messages == []  # no receipt for runs that were not frozen
    assert all(ctx.store.get_bytes(f"{submissions}{team}/{run}") == data for (team, run), data in runs.items())  # nothing lost

    manifest = collect(at_deadline, "beta")
    assert {(e["team"], e["run"]): e["sha256"] for e in manifest["collected"]} == {pair: hashlib.sha256(data).hexdigest() for pair, data in runs.items()}
    assert sorted(m.recipients[0] for m in mailbox.messages) == ["c1@team.example.org", "c2@team.example.org"]
    before = bucket_state(ctx.store)
    assert collect(at_deadline, "beta")["collected"] == manifest["collected"]
    assert bucket_state(ctx.store) == before and len(mailbox.messages) == 2


@pytest.mark.parametrize("mode", MODES)
def test_scoring_and_results_stop_within_bound_and_complete_on_rerun(ctx, faulty_ctx, faults, mailbox, mode):
    from tests.scoring.scoring_fixtures import GANS_GOLD, collect as write_collection, gans_gold, gans_run, register as write_team, score_task, stage_gold

    stage_gold(ctx, "alpha", gans_gold())
    write_collection(ctx, "alpha", {("team-a", "perfect"): gans_run(GANS_GOLD), ("team-b", "noisy"): gans_run({**GANS_GOLD, "7": 0, "8": 1})})
    write_team(ctx, "team-a", "a@team.example.org")
    write_team(ctx, "team-b", "b@team.example.org")

    faults.misbehave(mode, only="/evaluations/")
    _fails_within_bound(mode, lambda: score_task(faulty_ctx, "alpha"))
    faults.heal()
    outcome = score_task(faulty_ctx, "alpha")
    version = outcome["version"]
    board = evaluation.read_leaderboard(ctx, "alpha", version)
    assert sorted((row["team"], row["run"]) for row in board["rows"]) == [("team-a", "perfect"), ("team-b", "noisy")]

    mailbox.clear()
    faults.misbehave(mode)
    _fails_within_bound(mode, lambda: results.publish(faulty_ctx, "alpha", approved_by="chair"))
    faults.heal()
    assert mailbox.messages == []
    results.publish(faulty_ctx, "alpha", approved_by="chair")
    assert sorted(m.recipients[0] for m in mailbox.messages) == ["a@team.example.org", "b@team.example.org"]
    results.publish(faulty_ctx, "alpha", approved_by="chair")
    assert len(mailbox.messages) == 2
