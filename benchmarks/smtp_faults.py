"""How long one mail stage takes against misbehaving SMTP servers, next to a healthy server (the baseline).

The stage is the registration announcement of a campaign with ``--recipients`` addresses on its
announcement list, run twice per server (the second run is the task's retry). Printed per server:
seconds of each run, SMTP connections, messages the server received, and what the outbox recorded.
Every server listens on 127.0.0.1; the object store is a moto server on loopback.

    PYTHONPATH=. .venv/bin/python benchmarks/smtp_faults.py --recipients 20 --timeout 2
"""
from __future__ import annotations

import argparse
import os
import time
import uuid
from collections import Counter

from include.campaign.config import Campaign
from include.campaign.context import CampaignContext
from include.campaign.mail import SmtpSettings
from include.campaign.registration import announce_opening
from include.campaign.store import ObjectStore, S3Settings
from devtools.devstack import MailRecorder, start_s3_server, start_smtp_server
from tests.faults.smtp_servers import BouncingRecorder, ScriptedSmtpServer
from tests.lifecycle.conftest import make_campaign, now_utc


def campaign_with(recipients: int) -> Campaign:
    data = make_campaign(now_utc()).model_dump()
    data["announce_to"] = ["bounce@lab.example.org" if number == 1 else f"list{number}@lab.example.org" for number in range(recipients)]
    return Campaign.model_validate(data)


def run_stage(ctx: CampaignContext) -> tuple[float, str]:
    started = time.monotonic()
    try:
        announce_opening(ctx, ["alpha", "beta"])
        outcome = "ok"
    except Exception as error:  # noqa: BLE001 (reported, it is what is measured)
        outcome = type(error).__name__
    return time.monotonic() - started, outcome


def outbox_states(ctx: CampaignContext) -> str:
    states = Counter(ctx.store.get_json(key).get("status", "sent") for key in ctx.outbox.sent_markers("announcement"))
    return ", ".join(f"{count} {status}" for status, count in sorted(states.items())) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=2.0, help="read and connect timeout of the SMTP settings, seconds")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    s3, endpoint = start_s3_server()
    campaign = campaign_with(args.recipients)
    print(f"{args.recipients} announcement recipients (+ organizers), timeout {args.timeout:g} s, 3 attempts per message")
    print(f"{'server':<18} {'run 1 s':>8} {'run 2 s':>8} {'connections':>12} {'received':>9}  outbox after two runs")
    try:
        for name in ("healthy (baseline)", "refuses one 550", "drop-after-data", "hang-after-data", "hang-at-greeting"):
            store = ObjectStore(S3Settings(bucket=f"bench-{uuid.uuid4().hex[:10]}", endpoint_url=endpoint,
                                           access_key_id=os.environ["AWS_ACCESS_KEY_ID"], secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"]))
            store.ensure_bucket()
            if name.startswith(("healthy", "refuses")):
                recorder = MailRecorder() if name.startswith("healthy") else BouncingRecorder()
                controller, port = start_smtp_server(recorder)
                stop, connections, received = controller.stop, lambda: "-", lambda: len(recorder.messages)
            else:
                server = ScriptedSmtpServer(name).__enter__()
                port, stop = server.port, (lambda s=server: s.__exit__(None, None, None))
                connections, received = (lambda s=server: s.connections), (lambda s=server: len(s.messages))
            smtp = SmtpSettings(host="127.0.0.1", port=port, timeout=args.timeout, connect_timeout=args.timeout, attempts=3, backoff_seconds=0.5)
            ctx = CampaignContext(campaign, store, smtp)
            try:
                (first, outcome_1), (second, outcome_2) = run_stage(ctx), run_stage(ctx)
            finally:
                stop()
            print(f"{name:<18} {first:>8.2f} {second:>8.2f} {connections()!s:>12} {received():>9}  {outbox_states(ctx)} ({outcome_1}, {outcome_2})")
    finally:
        s3.stop()


if __name__ == "__main__":
    main()
