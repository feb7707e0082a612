"""Time the organizers' Campaigns page on a real-size campaign: 11 tasks, 200 teams, 2,000 runs.

Builds that state in a moto S3 server on loopback (its own process, as S3 or MinIO would be) (team records, agreement decisions, rejected
registrations, collection manifests, two evaluation versions per task with their leaderboards,
an outbox of every e-mail the stages send, undeliverable addresses), then times the view model
of each tab (:func:`include.campaign.overview.campaign_panel`) with its rendered page. Measured in
the same run: the same view model reading one object at a time with no cache (the baseline), and
as it was before listings were parsed with ElementTree (botocore's parser, a HEAD before each GET
of an object that may be absent). It prints the S3 calls a tab makes and the CPU the moto server
and this process spent on it, to see where the time goes.

    python benchmarks/campaigns_page.py [--teams 200] [--runs 2000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
UTC = dt.timezone.utc
TASKS = 11


def campaign(now: dt.datetime):
    from include.campaign.config import Campaign

    day = dt.timedelta(days=1)
    schedule = {"registration_opens": now - 60 * day, "dev_data_release": now - 50 * day, "test_data_release": now - 20 * day,
                "registration_closes": now - 10 * day, "run_deadline": now - 5 * day, "results_release": now + day,
                "working_notes_deadline": now + 10 * day, "notification": now + 20 * day, "camera_ready": now + 25 * day,
                "conference_start": now + 30 * day, "conference_end": now + 33 * day}
    tasks = [{"id": f"task-{i:02d}", "title": f"Task {i}", "run_format": "gans-detection-csv", "metrics": ["gans_kappa", "gans_accuracy", "gans_f1"],
              "runs_allowed": 10, "requires_agreement": i % 2 == 0} for i in range(TASKS)]
    return Campaign.model_validate({"id": "bench", "name": "Page benchmark", "lab": "a benchmark", "timezone": "Europe/Zurich",
                                    "organizers": [{"name": "Chair", "email": "chair@example.org"}], "contact_email": "chair@example.org",
                                    "schedule": schedule, "tasks": tasks})


def build_state(ctx, teams: int, runs: int) -> int:
    """Write the objects the stages would have written; returns how many."""
    from include.campaign.store import dump_json

    layout, task_ids = ctx.layout, ctx.campaign.task_ids
    objects: dict[str, bytes] = {}
    team_ids = [f"team-{n:03d}" for n in range(teams)]
    for n, team in enumerate(team_ids):
        mine = [task_ids[(n + k) % TASKS] for k in range(3)]
        objects[layout.team_record(team)] = dump_json({"team_id": team, "team_name": f"Team {n}", "contact_email": f"{team}@example.org",
                                                       "tasks": mine, "agreements": {t: f"registrations/agreements/{team}-{t}.pdf" for t in mine}})
        for task in mine:
            if ctx.campaign.task(task).requires_agreement and n % 3:
                objects[layout.approval_record(team, task)] = dump_json({"team": team, "task": task, "approved": n % 3 == 1, "decided_by": "olga"})
            objects[layout.outbox("registration-confirmation", f"{task}.{team}", f"{team}@example.org")] = b"{}"
            objects[layout.outbox("run-receipt", f"{task}.{team}", f"{team}@example.org")] = b"{}"
    for n in range(50):
        objects[layout.registrations_rejected() + f"doc-{n:03d}/reason.json"] = dump_json({"document": f"inbox/doc-{n}.json", "received_at": f"2026-11-01T10:{n % 60:02d}:00+00:00", "reasons": ["no such task"]})
    per_task = runs // TASKS
    for t, task in enumerate(task_ids):
        collected = [{"team": team_ids[(t * 7 + k) % teams], "run": f"run-{k // teams + 1:02d}", "sha256": f"{k:064x}"} for k in range(per_task)]
        objects[layout.collection_manifest(task)] = dump_json({"task": task, "collected": collected, "late": [], "refused": [], "dropped_over_limit": []})
        for version in ("v0001", "v0002"):
            base = layout.evaluations(task, version)
            rows = [{**c, "verdict": "valid" if k % 10 else "invalid", "scored_in": version, "reason": "line 3: not a label"} for k, c in enumerate(collected)]
            objects[base + "version.json"] = dump_json({"version": version, "reason": "runs collected", "triggered_by": "asset event", "created_at": "2026-11-26T00:00:00+00:00"})
            objects[base + "evaluation.json"] = dump_json({"task": task, "version": version, "runs": rows, "missing": []})
            objects[base + "diff.json"] = dump_json({"changed": [{"team": c["team"], "run": c["run"]} for c in collected[:5]] if version == "v0002" else []})
            objects[base + "lineage.json"] = dump_json({"task": task, "version": version, "runs": [{"team": c["team"], "run": c["run"]} for c in collected]})
            board = {"ranked_by": "gans_kappa", "metrics": [{"name": m} for m in ("gans_kappa", "gans_accuracy", "gans_f1")],
                     "rows": [{"rank": k + 1, "team": c["team"], "run": c["run"], "status": "ranked", "metrics": {"gans_kappa": 0.5, "gans_accuracy": 0.7, "gans_f1": 0.6}}
                              for k, c in enumerate(collected)]}
            objects[layout.leaderboards(task, version) + "leaderboard.json"] = dump_json(board)
        for team in team_ids[:teams // 2]:
            objects[layout.outbox("results", f"{task}.{team}", f"{team}@example.org")] = b"{}"
    for n in range(10):
        objects[layout.undeliverable("results", f"task-00.team-{n:03d}", f"gone{n}@example.org")] = dump_json({"recipient": f"gone{n}@example.org", "error": "550 no such user"})
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda item: ctx.store.put_bytes(item[0], item[1]), objects.items()))
    return len(objects)


def wait_for(endpoint: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"moto_server did not answer at {endpoint} within {seconds:.0f} s")
            time.sleep(0.2)


@contextlib.contextmanager
def botocore_parsing():
    """The page as it was before: listings parsed by botocore, a HEAD before each GET of an object that may be absent."""
    from include.campaign.store import ObjectStore

    saved = ObjectStore.scan, ObjectStore.get_json_or_none
    ObjectStore.scan = lambda self, prefix, page_size=1000: list(self.list_objects(prefix))
    ObjectStore.get_json_or_none = lambda self, key: self.get_json(key) if self.head(key) is not None else None
    try:
        yield
    finally:
        ObjectStore.scan, ObjectStore.get_json_or_none = saved


def count_calls(store) -> Counter:
    """S3 operations by name, as boto3 sends them, plus the quick listings (presigned, not sent by boto3)."""
    calls: Counter = Counter()
    store.client.meta.events.register("before-call.s3", lambda model, **kwargs: calls.update([model.name]))
    original = store._listing_page
    store._listing_page = lambda *args: (calls.update(["ListObjectsV2 (quick)"]), original(*args))[1]
    return calls


def cpu_of(pid: int, repeat: int, function) -> tuple[object, tuple[float, float]]:
    """``function()``'s result, and the CPU seconds per repetition of the moto server and of this process."""
    moto, own = cpu_seconds(pid), time.process_time()
    result = function()
    return result, ((cpu_seconds(pid) - moto) / repeat, (time.process_time() - own) / repeat)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    from include.campaign import overview
    from include.campaign.context import CampaignContext
    from include.campaign.mail import SmtpSettings, template_environment
    from include.campaign.store import ObjectStore, S3Settings
    from devtools.devstack import free_port

    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(endpoint)
        store = ObjectStore(S3Settings(bucket="bench-page", endpoint_url=endpoint, access_key_id="bench", secret_access_key="bench-secret"))
        store.ensure_bucket(versioning=True)
        ctx = CampaignContext(campaign(dt.datetime.now(UTC)), store, SmtpSettings(host="127.0.0.1"))
        started = time.perf_counter()
        count = build_state(ctx, args.teams, args.runs)
        print(f"state: {TASKS} tasks, {args.teams} teams, {args.runs} runs, {count:,} objects written in {time.perf_counter() - started:.1f} s")

        page = template_environment().get_template("campaigns/campaign.html.j2")
        calls = count_calls(store)
        print(f"{'panel':14s} {'one read at a time,':>20s} {'botocore listings,':>19s} {'now':>8s} {'with HTML':>10s}   S3 calls now; CPU of moto / of this process")
        print(f"{'':14s} {'no cache (baseline)':>20s} {'HEAD+GET (before)':>19s}")
        slowest = 0.0
        for panel in overview.PANELS:
            with botocore_parsing():
                (before_s, _), before_cpu = cpu_of(server.pid, args.repeat, lambda: timed(lambda: overview.campaign_panel(ctx, panel), args.repeat))
            calls.clear()
            (concurrent_s, data), (moto_cpu, own_cpu) = cpu_of(server.pid, args.repeat, lambda: timed(lambda: overview.campaign_panel(ctx, panel), args.repeat))
            per_page = {name: count // args.repeat for name, count in sorted(calls.items())}
            render_s, _ = timed(lambda: page.render(prefix="/campaigns", o=data, panels=overview.PANELS, user="olga", csrf="x", message=""), args.repeat)
            readers = overview.READERS
            overview.READERS = 1
            try:
                with botocore_parsing():
                    sequential_s, _ = timed(lambda: (overview._CACHE.clear(), overview.campaign_panel(ctx, panel)), args.repeat)
            finally:
                overview.READERS = readers
                timed(lambda: overview.campaign_panel(ctx, panel), 1)  # warm the cache again
            slowest = max(slowest, concurrent_s + render_s)
            print(f"{panel:14s} {sequential_s * 1000:17.0f} ms {before_s * 1000:16.0f} ms {concurrent_s * 1000:5.0f} ms {(concurrent_s + render_s) * 1000:7.0f} ms"
                  f"   {per_page or '-'}; {moto_cpu * 1000:.0f} / {own_cpu * 1000:.0f} ms (before: {before_cpu[0] * 1000:.0f} / {before_cpu[1] * 1000:.0f} ms)")
        for label, mode in (("before", botocore_parsing), ("now", contextlib.nullcontext)):
            with mode():
                overview._CACHE.clear()
                cold_s, _ = timed(lambda: overview.campaign_panel(ctx, "registrations"), 1)
            print(f"registrations, first page after the api-server started (nothing cached), {label}: {cold_s * 1000:.0f} ms")
        whole_s, _ = timed(lambda: overview.campaign_overview(ctx), args.repeat)
        print(f"slowest tab (view model + HTML): {slowest * 1000:.0f} ms (goal: under 1,000 ms); all panels at once (JSON view): {whole_s * 1000:.0f} ms; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
