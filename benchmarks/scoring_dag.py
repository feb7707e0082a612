"""Score 300 runs of a 2,000-image concept-detection task through the scoring DAG with ``dag.test()``.

Prints the DAG run's total time and splits it, measured side by side in a fresh process (which pays
the validator's one-time imports as the DAG run's first validation does), into the validation code,
the metric code, and the rest (Airflow's task running and XCom, and object-store traffic): the share
spent outside the metric code is what the pipeline costs on top of scoring.
It also counts the S3 requests the DAG run made (every botocore API call in this process, by
operation), per scored run, and times the validation and metric code inside the DAG run itself
(``validate_run`` and ``score_run`` wrapped while it runs): that share is measured under the same
load as the run, where the side-by-side re-run afterwards may meet another load on a shared machine.
On a loaded machine wall-clock shares move with the load; the CPU-time line does not: the process's
CPU time during the DAG run (every thread; the S3 server's is its own process's) against the thread CPU time of the wrapped validation and metric calls.

    python benchmarks/scoring_dag.py [--runs 300] [--images 2000]

The execution API that ``dag.test()`` runs tasks against is started (and answers once) before the
clock starts: its one-time set-up, about 10 s, belongs to starting Airflow's api-server, not to a DAG run.
Everything is real: an S3 server (moto's, :mod:`devtools.s3_server`) on loopback in its own process, as S3
is a service of its own in a deployment (in this process, its request handling competed with the DAG
run for the GIL and counted as pipeline time), a SQLite metadata database migrated in a
temporary AIRFLOW_HOME, the project's scoring DAG.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._bench_campaign import TASK, baseline_seconds, make_data, stage, write_campaign  # noqa: E402


def server_cpu_seconds(process) -> float:
    """CPU seconds (user and system) the S3 server process has used so far."""
    import psutil

    times = psutil.Process(process.pid).cpu_times()
    return times.user + times.system


def count_s3_calls() -> Counter:
    """A counter of every S3 API call made from now on in this process (tasks run in-process), by operation."""
    import botocore.client

    calls: Counter = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counted(client, operation_name, api_params):
        calls[operation_name] += 1
        return original(client, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = counted
    return calls


def time_inside_the_run() -> dict[str, float]:
    """Seconds (wall-clock, and CPU of the calling thread) spent in ``validate_run`` and ``score_run`` from now on, whoever calls them (scoring
    imports both from their packages when it validates and scores, so the wrappers are what it calls)."""
    import include.campaign.validation as validation
    import include.metrics as metrics

    spent = {"validation": 0.0, "metrics": 0.0, "validation_cpu": 0.0, "metrics_cpu": 0.0}

    def timed(function, name):
        def wrapper(*args, **kwargs):
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started
                spent[f"{name}_cpu"] += time.thread_time() - cpu
        return wrapper

    validation.validate_run = timed(validation.validate_run, "validation")
    metrics.score_run = timed(metrics.score_run, "metrics")
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()

    from devtools.s3_server import start_s3_process

    server, endpoint = start_s3_process()
    try:
        return measure(args, server, endpoint)
    finally:  # the S3 server is a child process: stopped however the measurement ends
        server.terminate()
        server.wait(timeout=30)


def measure(args, server, endpoint: str) -> int:
    """Stage the data, run the scoring DAG once, time the baseline, print the figures."""
    from devtools.devstack import s3_connection_json, smtp_connection_json

    work = Path(tempfile.mkdtemp(prefix="scoring-bench-"))
    campaign_file = write_campaign(work, "Scoring benchmark")
    os.environ.update({
        "AIRFLOW_HOME": str(work / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{work / 'airflow.db'}", "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        "AIRFLOW_CONN_CLEF_S3": s3_connection_json(endpoint), "AIRFLOW_CONN_SMTP_DEFAULT": smtp_connection_json("127.0.0.1", 9),
        "CLEF_BUCKET": "scoring-bench", "CLEF_CAMPAIGNS_DIR": str(campaign_file.parent), "PYTHONPATH": str(ROOT),
    })
    subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], check=True, capture_output=True)

    from include.campaign.config import load_campaign
    from include.campaign.context import CampaignContext
    from include.campaign.mail import SmtpSettings
    from include.campaign.store import ObjectStore, S3Settings

    ctx = CampaignContext(load_campaign(campaign_file), ObjectStore(S3Settings.from_env()), SmtpSettings(host="127.0.0.1", port=9))
    ctx.store.ensure_bucket()
    gold, manual, runs = make_data(args.images, args.runs)
    stage(ctx, gold, manual, runs)

    from devtools import airflow_internals
    from devtools.dag_driver import DagDriver

    driver = DagDriver(campaign_file.parent)
    airflow_internals.start_in_process_execution_api()  # a deployment's api-server is up before any DAG run
    s3_calls = count_s3_calls()
    inside = time_inside_the_run()
    server_cpu_started = server_cpu_seconds(server)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = driver.run("bench_scoring", conf={"task": TASK, "teams": [], "runs": [], "reason": "benchmark"})
    total, total_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    server_cpu = server_cpu_seconds(server) - server_cpu_started
    calls, inside = dict(s3_calls), dict(inside)  # the re-run below adds to neither
    if not result.ok:
        print(f"scoring DAG run failed: {result.failed_tasks()}")
        return 1

    # The same validation and metric code, timed directly in a fresh process, run by run.
    validate_seconds, metric_seconds = baseline_seconds(campaign_file, gold, manual, runs, work)
    outside_metric = total - metric_seconds
    print(f"scoring DAG, {args.runs} runs x {args.images} images, one dag.test() run: {total:.1f} s ({total / args.runs * 1000:.0f} ms per run)")
    print(f"  metric code (score_run, same runs, fresh process):    {metric_seconds:7.1f} s  {metric_seconds / total:6.1%}")
    print(f"  validation code (validate_run, fresh process):        {validate_seconds:7.1f} s  {validate_seconds / total:6.1%}")
    print(f"  the rest: Airflow task running, XCom, S3 traffic:     {total - metric_seconds - validate_seconds:7.1f} s  {(total - metric_seconds - validate_seconds) / total:6.1%}")
    print(f"  share outside the metric code:                         {outside_metric:7.1f} s  {outside_metric / total:6.1%}")
    print(f"  share outside the validation and metric code:          {total - metric_seconds - validate_seconds:7.1f} s  "
          f"{(total - metric_seconds - validate_seconds) / total:6.1%}")
    in_run = inside["validation"] + inside["metrics"]
    print(f"  timed inside the DAG run: validation {inside['validation']:.1f} s, metrics {inside['metrics']:.1f} s; "
          f"share outside them: {total - in_run:.1f} s  {(total - in_run) / total:.1%}")
    in_run_cpu = inside["validation_cpu"] + inside["metrics_cpu"]
    print(f"  CPU time of the DAG run (all threads): {total_cpu:.1f} s; inside it validation {inside['validation_cpu']:.1f} s, "
          f"metrics {inside['metrics_cpu']:.1f} s; share outside them: {total_cpu - in_run_cpu:.1f} s  {(total_cpu - in_run_cpu) / total_cpu:.1%}")
    print(f"  CPU time of the S3 server process during the DAG run (not counted above): {server_cpu:.1f} s")
    print(f"S3 requests during the DAG run: {sum(calls.values())} ({sum(calls.values()) / args.runs:.1f} per run); by operation:")
    for operation, count in sorted(calls.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {operation:<28} {count:6d}  {count / args.runs:6.2f} per run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
