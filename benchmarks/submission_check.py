"""Benchmark: the submission check over N upload versions, against its floor.

Over a moto S3 server and an aiosmtpd server on loopback (as the tests), N small runs of a GANs
detection task are uploaded by N/3 teams (three slots each). Printed side by side:
- the floor: listing every version and asking the store whether its receipt exists (what any
  check has to do to find new versions);
- the first check (download, sha256, validation with the public test inputs, receipt, one e-mail
  per version), per version;
- a second check (nothing new: receipts read, no e-mail), per version.

    PYTHONPATH=. .venv/bin/python benchmarks/submission_check.py [--versions 90]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time

UTC = dt.timezone.utc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", type=int, default=90)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    from include.campaign.config import parse_campaign
    from include.campaign.context import CampaignContext
    from include.campaign.mail import SmtpSettings
    from include.campaign.store import ObjectStore, S3Settings
    from include.campaign.submission_check import check, uploads
    from devtools.devstack import MailRecorder, start_s3_server, start_smtp_server

    s3_server, endpoint = start_s3_server()
    recorder = MailRecorder()
    smtp_server, port = start_smtp_server(recorder)
    try:
        store = ObjectStore(S3Settings(bucket="bench-check", endpoint_url=endpoint, access_key_id="bench", secret_access_key="bench-secret"))
        store.ensure_bucket(versioning=True)
        now = dt.datetime.now(UTC).replace(microsecond=0)
        ctx = CampaignContext(parse_campaign(_campaign(now)), store, SmtpSettings(host="127.0.0.1", port=port, timeout=5))
        ids = [f"img-{n:04d}" for n in range(200)]
        store.put_bytes(ctx.layout.gold("det", "test") + "labels.csv", ("id,label\n" + "".join(f"{i},{n % 2}\n" for n, i in enumerate(ids))).encode())
        run = "".join(f"{i},{n % 2}\n" for n, i in enumerate(ids)).encode()
        teams = (args.versions + 2) // 3
        for number in range(teams):
            team = f"team-{number:03d}"
            store.put_json(ctx.layout.team_record(team), {"team_id": team, "team_name": team, "contact_email": f"{team}@bench.example.org", "contact_name": "Bench",
                                                          "tasks": ["det"], "agreements": {}, "registrations": []})
        for number in range(args.versions):
            store.put_bytes(ctx.layout.submissions("det", f"team-{number // 3:03d}") + f"run-0{number % 3 + 1}", run)

        start = time.perf_counter()
        found = uploads(ctx, "det")
        for upload, _ in found:
            store.head(ctx.layout.receipt("det", upload.team, upload.run, upload.version_segment))
        floor = time.perf_counter() - start
        start = time.perf_counter()
        first = check(ctx, "det")
        first_time = time.perf_counter() - start
        start = time.perf_counter()
        second = check(ctx, "det")
        second_time = time.perf_counter() - start
        count = len(found)
        print(f"{count} upload versions of {teams} teams, {len(ids)} lines each")
        print(f"{'floor (list + head per version)':40s} {floor:7.2f} s  {1000 * floor / count:7.1f} ms/version")
        print(f"{'first check (validate, receipt, mail)':40s} {first_time:7.2f} s  {1000 * first_time / count:7.1f} ms/version  ({first['mail']['sent']} e-mails)")
        print(f"{'second check (nothing new)':40s} {second_time:7.2f} s  {1000 * second_time / count:7.1f} ms/version  ({second['mail']['sent']} e-mails)")
    finally:
        smtp_server.stop()
        s3_server.stop()


def _campaign(now: dt.datetime) -> str:
    day = dt.timedelta(days=1)
    moments = [now - 2 * day, now - day, now - day / 2, now + day, now + 2 * day, now + 3 * day, now + 10 * day, now + 20 * day, now + 25 * day, now + 30 * day, now + 33 * day]
    names = ["registration_opens", "dev_data_release", "test_data_release", "registration_closes", "run_deadline", "results_release",
             "working_notes_deadline", "notification", "camera_ready", "conference_start", "conference_end"]
    return json.dumps({
        "id": "bench", "name": "Bench", "lab": "bench", "timezone": "UTC", "organizers": [{"name": "B", "email": "b@bench.example.org"}],
        "contact_email": "b@bench.example.org", "schedule": {n: m.isoformat() for n, m in zip(names, moments)},
        "tasks": [{"id": "det", "title": "Detection", "run_format": "gans-detection-csv", "metrics": ["gans_kappa"], "runs_allowed": 3}],
    })


if __name__ == "__main__":
    main()
