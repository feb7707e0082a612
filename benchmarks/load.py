"""Load benchmark: registrations in the inbox and runs at a deadline, S3 calls and time per item.

Runs the real registration intake over an inbox of N registration documents, and the real run
collection over R runs uploaded before a task's deadline, each at two sizes (by default 500 and
2,000 registrations, 125 and 500 runs), against a moto S3 server and an SMTP recorder on loopback.
S3 calls are counted with a botocore event hook on the store's own client (nothing is patched).
For each stage it prints the calls and the time per item at both sizes: the small size is the
baseline, and both figures staying flat from one size to the other (ratio near 1.0) shows the
stage is linear in the item count. The time is split into the time inside S3 calls (the moto
server, in a child process of its own, fresh for each measurement, slows as its in-memory bucket
grows) and the rest (this project's code and SMTP). It exits 1 when the calls per item or the time
per item outside S3 grow by more than half.

    PYTHONPATH=. .venv/bin/python benchmarks/load.py [--registrations 500 2000] [--runs 125 500]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.campaign.collection import collect  # noqa: E402
from include.campaign.config import Campaign  # noqa: E402
from include.campaign.context import CampaignContext  # noqa: E402
from include.campaign.mail import SmtpSettings  # noqa: E402
from include.campaign.registration import intake  # noqa: E402
from include.campaign.store import ObjectStore, S3Settings  # noqa: E402
from devtools.devstack import MailRecorder, start_smtp_server  # noqa: E402
from devtools.s3_server import start_s3_process  # noqa: E402

RUNS_PER_TEAM = 5
GROWTH_LIMIT = 1.5  # per-item figures may grow this much from the small to the large size


class S3Calls:
    """Counts the store client's S3 operations and the time spent in them (botocore's events:
    ``provide-client-params`` when a call starts, ``before-call``/``after-call`` around its HTTP request)."""

    HOOKS = ("provide-client-params.s3.*", "before-call.s3.*", "after-call.s3.*")

    def __init__(self, store: ObjectStore):
        self.events = store.client.meta.events
        self.operations: Counter = Counter()
        self.seconds = 0.0
        self._started = 0.0

    def _count(self, model, **_):
        self.operations[model.name] += 1

    def _before(self, **_):
        self._started = time.perf_counter()

    def _after(self, **_):
        self.seconds += time.perf_counter() - self._started

    def __enter__(self) -> "S3Calls":
        for hook, handler in zip(self.HOOKS, (self._count, self._before, self._after)):
            self.events.register(hook, handler, unique_id=f"load-benchmark-{hook}")
        return self

    def __exit__(self, *exc) -> None:
        for hook in self.HOOKS:
            self.events.unregister(hook, unique_id=f"load-benchmark-{hook}")

    @property
    def total(self) -> int:
        return sum(self.operations.values())


@dataclass
class Measure:
    items: int
    calls: int
    seconds: float
    operations: Counter
    s3_seconds: float

    @property
    def s3_ms_per_item(self) -> float:
        return 1000 * self.s3_seconds / self.items

    @property
    def other_ms_per_item(self) -> float:
        return self.ms_per_item - self.s3_ms_per_item

    @property
    def calls_per_item(self) -> float:
        return self.calls / self.items

    @property
    def ms_per_item(self) -> float:
        return 1000 * self.seconds / self.items


def campaign(now: dt.datetime, deadline: dt.datetime | None = None) -> Campaign:
    day = dt.timedelta(days=1)
    schedule = {"registration_opens": now - 2 * day, "dev_data_release": now - day, "test_data_release": now - day / 2,
                "registration_closes": now + day, "run_deadline": deadline or now + 2 * day, "results_release": now + 3 * day,
                "working_notes_deadline": now + 10 * day, "notification": now + 20 * day, "camera_ready": now + 25 * day,
                "conference_start": now + 30 * day, "conference_end": now + 33 * day}
    if deadline is not None:
        schedule.update(registration_opens=deadline - 4 * day, dev_data_release=deadline - 3 * day, test_data_release=deadline - 2 * day,
                        registration_closes=deadline - day)
    return Campaign.model_validate({
        "id": "loadlab", "name": "Load Lab 2025", "lab": "a load test", "timezone": "UTC",
        "organizers": [{"name": "Chair", "email": "chair@lab.example.org"}], "contact_email": "chair@lab.example.org",
        "schedule": schedule,
        "tasks": [{"id": "beta", "title": "Beta captions", "run_format": "topicto-json", "metrics": ["picto_er"], "runs_allowed": RUNS_PER_TEAM}],
    })


def registration(number: int) -> bytes:
    return json.dumps({"team_name": f"Load Team {number:05d}", "affiliation": "University of Load", "country": "fr",
                       "contact_name": f"Contact {number:05d}", "contact_email": f"team{number:05d}@load.example.org", "tasks": ["beta"]}).encode()


def fresh_context(endpoint: str, smtp_port: int, campaign_model: Campaign) -> CampaignContext:
    store = ObjectStore(S3Settings(bucket=f"load-{uuid.uuid4().hex[:12]}", endpoint_url=endpoint, access_key_id="load", secret_access_key="load-secret"))
    store.ensure_bucket(versioning=True)
    smtp = SmtpSettings(host="127.0.0.1", port=smtp_port, sender="lab@load.example.org", timeout=10)
    return CampaignContext(campaign_model, store, smtp)


def fill_inbox(ctx: CampaignContext, count: int) -> None:
    inbox = ctx.layout.registrations_inbox()
    for number in range(1, count + 1):
        ctx.store.put_bytes(f"{inbox}team-{number:05d}.json", registration(number), content_type="application/json")


def measure_intake(endpoint: str, smtp_port: int, count: int) -> Measure:
    ctx = fresh_context(endpoint, smtp_port, campaign(dt.datetime.now(dt.timezone.utc)))
    fill_inbox(ctx, count)
    with S3Calls(ctx.store) as calls:
        started = time.perf_counter()
        outcome = intake(ctx)
        seconds = time.perf_counter() - started
    assert len(outcome["accepted"]) == count, f"{len(outcome['accepted'])} of {count} accepted; rejected: {outcome['rejected'][:3]}"
    return Measure(count, calls.total, seconds, calls.operations, calls.seconds)


def measure_collection(endpoint: str, smtp_port: int, runs: int) -> Measure:
    teams = runs // RUNS_PER_TEAM
    ctx = fresh_context(endpoint, smtp_port, campaign(dt.datetime.now(dt.timezone.utc)))
    fill_inbox(ctx, teams)
    accepted = intake(ctx)["accepted"]
    submissions = ctx.layout.submissions("beta")
    for team in accepted:
        for number in range(1, RUNS_PER_TEAM + 1):
            ctx.store.put_bytes(f"{submissions}{team['team_id']}/run-{number:02d}", json.dumps([{"id": f"cefc-{number}", "hyp": "je manger"}]).encode())
    time.sleep(1.1)  # the store's clock has 1-second resolution: every upload is before the deadline
    deadline = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    at_deadline = CampaignContext(campaign(deadline, deadline=deadline), ctx.store, ctx.smtp)
    with S3Calls(ctx.store) as calls:
        started = time.perf_counter()
        manifest = collect(at_deadline, "beta")
        seconds = time.perf_counter() - started
    assert len(manifest["collected"]) == teams * RUNS_PER_TEAM, len(manifest["collected"])
    return Measure(runs, calls.total, seconds, calls.operations, calls.seconds)


def report(stage: str, unit: str, small: Measure, large: Measure) -> bool:
    call_growth = large.calls_per_item / small.calls_per_item
    time_growth = large.ms_per_item / small.ms_per_item
    other_growth = large.other_ms_per_item / small.other_ms_per_item
    print(f"\n{stage}")
    print(f"  {unit:<16}{'S3 calls':>10}{'calls/item':>12}{'seconds':>10}{'ms/item':>10}{'in S3':>8}{'other':>8}")
    for measure, label in ((small, "(baseline)"), (large, "")):
        print(f"  {measure.items:<6}{label:<10}{measure.calls:>10}{measure.calls_per_item:>12.2f}{measure.seconds:>10.1f}"
              f"{measure.ms_per_item:>10.1f}{measure.s3_ms_per_item:>8.1f}{measure.other_ms_per_item:>8.1f}")
    print(f"  per item, large / small: calls {call_growth:.2f}x, time {time_growth:.2f}x, time outside S3 calls {other_growth:.2f}x (linear: about 1.0x)")
    per_item = {name: round(count / large.items, 2) for name, count in large.operations.most_common()}
    print(f"  calls per item by operation at {large.items}: {per_item}")
    return call_growth <= GROWTH_LIMIT and other_growth <= GROWTH_LIMIT


def on_fresh_servers(measure, count: int) -> Measure:
    """Each measurement on its own moto and SMTP servers, so none inherits another's objects."""
    s3_server, endpoint = start_s3_process()
    smtp_server, smtp_port = start_smtp_server(MailRecorder())
    try:
        return measure(endpoint, smtp_port, count)
    finally:
        smtp_server.stop()
        s3_server.terminate()
        s3_server.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, nargs=2, default=[500, 2000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--runs", type=int, nargs=2, default=[125, 500], metavar=("SMALL", "LARGE"))
    args = parser.parse_args(argv)
    intakes = [on_fresh_servers(measure_intake, count) for count in args.registrations]
    collections = [on_fresh_servers(measure_collection, count) for count in args.runs]
    linear = report("registration intake", "registrations", *intakes)
    linear = report("run collection at the deadline", "runs", *collections) and linear
    print("\nlinear in the item count" if linear else "\nNOT LINEAR: calls or time outside S3 per item grew more than 1.5x")
    return 0 if linear else 1


if __name__ == "__main__":
    sys.exit(main())
