"""Benchmark: registration intake, S3 calls and time per document, at two inbox sizes.

Starts a moto S3 server and an aiosmtpd server on 127.0.0.1, fills the inbox with n registration
documents (every fourth one for the agreement task, with its own signed PDF; every tenth one hostile:
a control character in the team name, a 1,000-deep document, or a look-alike of a registered name)
and runs :func:`include.campaign.registration.intake` once. Prints, per size, the S3 calls by
operation and per document, and the seconds per document, next to a baseline from the same run: the
bare round trips every intake needs per document (read it, write its copy, delete it). Per-document
figures that stay flat from the small to the large inbox mean the intake is linear in the inbox.

    PYTHONPATH=. .venv/bin/python benchmarks/registration_intake.py [--sizes 100 400]
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")

from devtools.demo.submit import confirm_on_submission  # noqa: E402
from include.campaign.context import CampaignContext  # noqa: E402
from include.campaign.mail import SmtpSettings  # noqa: E402
from include.campaign.registration import intake  # noqa: E402
from include.campaign.store import ObjectStore, S3Settings  # noqa: E402
from devtools.devstack import MailRecorder, start_s3_server, start_smtp_server  # noqa: E402
from tests.lifecycle.conftest import make_campaign, registration  # noqa: E402


def fill_inbox(ctx: CampaignContext, size: int) -> None:
    inbox, agreements = ctx.layout.registrations_inbox(), ctx.layout.agreements()
    for number in range(size):
        name = f"Bench Team {number:05d}"
        email = f"team{number:05d}@bench.example.org"
        if number % 10 == 9:
            kind = number // 10 % 3
            data = (json.dumps(registration(f"Bad\rTeam {number}", email, ["beta"])).encode() if kind == 0
                    else b"[" * 1000 + b"]" * 1000 if kind == 1
                    else json.dumps(registration(f"Bench Team {number - 9:05d}".replace("0", "O"), email, ["beta"])).encode())
        elif number % 4 == 0:
            ctx.store.put_bytes(f"{agreements}team-{number:05d}.pdf", f"%PDF-1.4 signed by team {number}\n".encode())
            data = json.dumps(registration(name, email, ["alpha", "beta"], {"alpha": f"registrations/agreements/team-{number:05d}.pdf"})).encode()
        else:
            data = json.dumps(registration(name, email, ["beta"])).encode()
        ctx.store.put_bytes(f"{inbox}{number:05d}.json", data, content_type="application/json")
        confirm_on_submission(ctx, f"{inbox}{number:05d}.json", data, email, "benchmark")  # each contact proved its address


def count_calls(store: ObjectStore) -> collections.Counter:
    calls: collections.Counter = collections.Counter()
    store.client.meta.events.register("before-call.s3.*", lambda event_name, **_: calls.update([event_name.rsplit(".", 1)[1]]))
    return calls


def baseline(ctx: CampaignContext, size: int) -> float:
    """Read, copy and delete every document once: the round trips no intake can avoid."""
    prefix = ctx.layout.registrations_inbox()
    for number in range(size):
        ctx.store.put_bytes(f"{prefix}base-{number:05d}.json", b"{}")
    started = time.perf_counter()
    for info in list(ctx.store.list_objects(prefix)):
        data = ctx.store.get_bytes(info.key)
        ctx.store.put_bytes(info.key.replace("/inbox/", "/baseline/"), data)
        ctx.store.delete(info.key)
    return time.perf_counter() - started


def measure(endpoint: str, smtp_port: int, size: int) -> dict:
    store = ObjectStore(S3Settings(bucket=f"bench-{uuid.uuid4().hex[:8]}", endpoint_url=endpoint,
                                   access_key_id=os.environ["AWS_ACCESS_KEY_ID"], secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"]))
    store.ensure_bucket()
    ctx = CampaignContext(make_campaign(dt.datetime.now(dt.timezone.utc)), store, SmtpSettings(host="127.0.0.1", port=smtp_port, timeout=10))
    base = baseline(ctx, size)
    fill_inbox(ctx, size)
    calls = count_calls(store)
    started = time.perf_counter()
    outcome = intake(ctx)
    seconds = time.perf_counter() - started
    return {"size": size, "seconds": seconds, "baseline": base, "calls": calls,
            "accepted": len(outcome["accepted"]), "rejected": len(outcome["rejected"]), "mail": outcome["mail"]["sent"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 400])
    args = parser.parse_args()
    server, endpoint = start_s3_server()
    recorder = MailRecorder()
    controller, smtp_port = start_smtp_server(recorder)
    try:
        print(f"{'documents':>9} {'accepted':>8} {'rejected':>8} {'mails':>5} {'S3 calls/doc':>12} {'s/doc':>7} {'baseline s/doc':>14}  S3 calls by operation")
        for size in args.sizes:
            r = measure(endpoint, smtp_port, size)
            total = sum(r["calls"].values())
            operations = ", ".join(f"{name} {count}" for name, count in r["calls"].most_common())
            print(f"{size:>9} {r['accepted']:>8} {r['rejected']:>8} {r['mail']:>5} {total / size:>12.2f} {r['seconds'] / size:>7.4f} {r['baseline'] / size:>14.4f}  {operations}")
    finally:
        controller.stop()
        server.stop()


if __name__ == "__main__":
    main()
