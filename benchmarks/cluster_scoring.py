"""Scoring on the local cluster (CeleryExecutor, PostgreSQL, Redis): 300 runs with 1 and 2 default workers, and a 5,000-run task.

Starts :class:`devtools.cluster.LocalCluster` with one campaign of one concept-detection task, stages
gold and collected runs in its S3, and triggers ``bench_scoring`` through the REST API, as an
organizer re-scoring by hand would:

1. 300 runs x ``--images`` images with one default worker, then again after a second default worker
   joined (same concurrency each). Printed next to it, the baseline from the same run: the validation
   and metric code on the same 300 runs, one after the other in a fresh process. "Outside" is the share
   of the cluster's capacity (wall-clock x usable slots, slots capped at this machine's cores) not
   spent in that code: Airflow's scheduling, task start-up, XCom, S3 traffic, waiting;
2. one task with ``--large-runs`` (5,000) small runs: more than Airflow's ``max_map_length`` (1,024),
   so the scoring DAG batches them (docs/scoring-batches.md); printed: the instances and the time.

    python benchmarks/cluster_scoring.py [--runs 300] [--images 500] [--concurrency 2] [--large-runs 5000] [--skip-large]
                                         [--max-instances N]   # CLEF_SCORING_MAX_INSTANCES (default 16)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._bench_campaign import TASK, baseline_seconds, make_data, stage, write_campaign  # noqa: E402


def score_through_the_cluster(cluster, reason: str, timeout: float) -> tuple[float, list[dict]]:
    """Trigger bench_scoring by REST, wait (bounded) for its end; return wall-clock seconds and its task instances."""
    from tests.cluster.live_replay import ClusterApi

    api = ClusterApi(cluster.api)
    started = time.monotonic()
    run_id = f"benchmark__{int(time.time())}"
    cluster.api.trigger("bench_scoring", {"task": TASK, "teams": [], "runs": [], "reason": reason}, run_id=run_id)
    while True:
        cluster.check_alive()
        state = api.get(f"/api/v2/dags/bench_scoring/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            break
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"bench_scoring did not finish within {timeout:.0f} s")
        time.sleep(2)
    seconds = time.monotonic() - started
    if state != "success":
        raise RuntimeError(f"bench_scoring ended {state}; logs in {cluster.workdir / 'logs'}")
    return seconds, api.task_instances("bench_scoring", run_id)


def report_line(label: str, seconds: float, slots: int, work_seconds: float, instances: int) -> str:
    capacity = seconds * min(slots, os.cpu_count() or 1)
    outside = max(0.0, 1 - work_seconds / capacity)
    return f"  {label:<34} {seconds:7.1f} s wall-clock, {instances:4d} scoring instances, outside validation+metrics {outside:6.1%} of {capacity:7.1f} slot-s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2, help="task slots of each default worker")
    parser.add_argument("--large-runs", type=int, default=5000)
    parser.add_argument("--large-images", type=int, default=20)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800, help="bound on each scoring, seconds")
    parser.add_argument("--max-instances", type=int, help="CLEF_SCORING_MAX_INSTANCES for the cluster (default: the DAG's, 16)")
    args = parser.parse_args()

    from include.campaign.config import load_campaign
    from include.campaign.context import CampaignContext
    from include.campaign.mail import SmtpSettings
    from include.campaign.store import ObjectStore, S3Settings
    from devtools.cluster import LocalCluster
    from devtools.devstack import DEMO_ACCESS_KEY, DEMO_SECRET_KEY

    work = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    campaign_file = write_campaign(work, "Cluster scoring benchmark")
    campaign = load_campaign(campaign_file)
    gold, manual, runs = make_data(args.images, args.runs)
    validating, scoring = baseline_seconds(campaign_file, gold, manual, runs, work)
    print(f"baseline: {args.runs} runs x {args.images} images in a fresh process: validation {validating:.1f} s + metrics {scoring:.1f} s = {validating + scoring:.1f} s", flush=True)

    extra_env = {"CLEF_SCORING_MAX_INSTANCES": str(args.max_instances)} if args.max_instances else {}
    with LocalCluster(campaigns_dir=work / "campaigns", workdir=work / "cluster", default_workers=1, default_concurrency=args.concurrency,
                      extra_env=extra_env, say=lambda line: print(line, flush=True)) as cluster:
        ctx = CampaignContext(campaign, ObjectStore(S3Settings(bucket=cluster.bucket, endpoint_url=cluster.s3_endpoint, access_key_id=DEMO_ACCESS_KEY,
                                                               secret_access_key=DEMO_SECRET_KEY)), SmtpSettings(host="127.0.0.1", port=9))
        stage(ctx, gold, manual, runs)
        cluster.wait_for_dag("bench_scoring")
        cluster.api.unpause("bench_scoring")
        figures = []
        for workers in (1, 2):
            if workers == 2:
                cluster.add_worker("default", args.concurrency)
            seconds, instances = score_through_the_cluster(cluster, f"benchmark, {workers} default worker(s)", args.timeout)
            scored = [ti for ti in instances if ti["task_id"] == "score_run"]
            hosts = sorted({ti["hostname"] for ti in scored})
            figures.append(report_line(f"{workers} default worker(s) x {args.concurrency} slots", seconds, workers * args.concurrency, validating + scoring, len(scored)))
            print(figures[-1] + f"; ran on {', '.join(hosts)}", flush=True)
        if not args.skip_large:
            large_gold, large_manual, large = make_data(args.large_images, args.large_runs, seed=11)
            started = time.monotonic()
            stage(ctx, large_gold, large_manual, large)
            staged = time.monotonic() - started
            seconds, instances = score_through_the_cluster(cluster, f"benchmark, {args.large_runs} runs", args.timeout)
            scored = [ti for ti in instances if ti["task_id"] == "score_run"]
            from include.campaign import evaluation as scoring_module

            version = scoring_module.latest_version(ctx, TASK)
            evaluation = scoring_module.read_evaluation(ctx, TASK, version)
            print(f"  {args.large_runs} runs x {args.large_images} images (staged in {staged:.0f} s): {seconds:.1f} s wall-clock with 2 default workers, "
                  f"{len(scored)} scoring instances (max_map_length 1024, instance limit {args.max_instances or 16}), evaluation {version}: {len(evaluation['runs'])} runs, "
                  f"{len(evaluation['missing'])} missing", flush=True)
            if len(evaluation["runs"]) != args.large_runs or evaluation["missing"]:
                print("the large task was not scored completely", file=sys.stderr)
                return 1
    print("\nsummary (wall-clock from the REST trigger to the DAG run's success):")
    for line in figures:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
