"""Benchmark: the cost of leaderboard significance next to the cost of scoring the same runs.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/significance.py`` (a few minutes on 2 cores;
``--runs 20 --resamples 2000`` for a quick look).

Data: one generated concept-detection test set of 17,000 images (sizes like the 2024 test set)
and 100 runs of different quality, written as the zip files participants upload.

Figures, all from this process:
1. scoring, metrics only: ``score_run`` (concept F1 and its manual variant) on every run, from
   the parsed run: the smallest part of scoring, so the most demanding baseline;
2. scoring, the official path: ``include.campaign.evaluation.evaluate`` (validation with its report,
   then the metrics) on ``--full-runs`` runs, scaled to all runs;
3. statistics: ``significance_groups`` on the 100 runs' per-item scores with 10,000 resamples
   (bootstrap intervals of every run, then paired randomization tests and Holm rounds until every
   run has a group), split into the intervals and the tests.
Goal: statistics a small fraction of scoring (printed as a percentage of both baselines).
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.campaign import significance as st  # noqa: E402
from include.metrics import score_run  # noqa: E402


def write_data(folder: Path, images: int, runs: int, seed: int = 2024) -> tuple[Path, list[Path]]:
    """A gold folder (concepts.csv, concepts_manual.csv) and ``runs`` run zips of rising quality."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"C{n:07d}" for n in rng.choice(5_000_000, 2_000, replace=False)])
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()
    ids = [f"ImageCLEFmedical_Caption_2024_test_{n:06d}" for n in range(images)]
    sizes = rng.integers(1, 10, images)
    drawn = rng.choice(len(vocabulary), int(sizes.sum()), p=weights)
    gold = [list(dict.fromkeys(vocabulary[chunk])) for chunk in np.split(drawn, np.cumsum(sizes)[:-1])]
    (folder / "gold").mkdir()
    table = pd.DataFrame({"ID": ids, "CUIs": [";".join(c) for c in gold]})
    table.to_csv(folder / "gold" / "concepts.csv", index=False)
    table.to_csv(folder / "gold" / "concepts_manual.csv", index=False)
    paths = []
    for run in range(runs):
        keep = 0.3 + 0.4 * run / max(runs - 1, 1)  # runs differ by small steps: many close pairs
        guesses = rng.choice(vocabulary, size=(images, 3), p=weights)
        rows = []
        for n, concepts in enumerate(gold):
            kept = [c for c, u in zip(concepts, rng.random(len(concepts))) if u < keep]
            rows.append((ids[n], ";".join(dict.fromkeys(kept + list(guesses[n, : n % 4])))))
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        path = folder / f"run{run:03d}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("submission.csv", buffer.getvalue())
        paths.append(path)
    return folder / "gold", paths


def parsed(run_path: Path, gold_dir: Path):
    """The canonical run and gold the metrics read (parsing is not timed as scoring)."""
    with zipfile.ZipFile(run_path) as archive:
        run = pd.read_csv(archive.open("submission.csv"), header=None, names=["ID", "CUIs"], dtype=str, keep_default_na=False)
    gold = {name: pd.read_csv(gold_dir / f"{name}.csv", dtype=str, keep_default_na=False) for name in ("concepts", "concepts_manual")}
    return run, gold


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=17_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--resamples", type=int, default=st.DEFAULT_RESAMPLES)
    parser.add_argument("--full-runs", type=int, default=3, help="runs timed through evaluate() (validation + metrics)")
    args = parser.parse_args(argv)
    from include.campaign.config import load_campaign
    from include.campaign.evaluation import evaluate

    task = load_campaign(ROOT / "include" / "campaigns" / "imageclef2025.yaml").task("caption-concept-detection")
    with tempfile.TemporaryDirectory(prefix="bench-stats-") as scratch:
        started = time.perf_counter()
        gold_dir, runs = write_data(Path(scratch), args.images, args.runs)
        print(f"data: {args.runs} runs x {args.images} images written in {time.perf_counter() - started:.1f} s")

        per_item, metric_seconds = [], 0.0
        for path in runs:
            run, gold = parsed(path, gold_dir)
            started = time.perf_counter()
            results = score_run(task.run_format, list(task.metrics), run, gold, {})
            metric_seconds += time.perf_counter() - started
            per_item.append(results["concept_f1"].per_item.sort_index().to_numpy())
        values = np.array([scores.mean() for scores in per_item])

        started = time.perf_counter()
        for path in runs[: args.full_runs]:
            evaluation = evaluate(task, path, gold_dir)
            assert evaluation.verdict == "valid", evaluation.text
        full_seconds = (time.perf_counter() - started) / max(args.full_runs, 1) * args.runs

    order = np.argsort(-values, kind="stable")
    ranked = [per_item[i] for i in order]
    started = time.perf_counter()
    st.bootstrap_values(ranked, resamples=args.resamples)
    interval_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = st.significance_groups(ranked, resamples=args.resamples)
    statistics_seconds = time.perf_counter() - started
    groups = len({run.group for run in result.runs})

    print(f"scoring, metrics only (score_run, 2 metrics, {args.runs} runs):             {metric_seconds:8.2f} s")
    print(f"scoring, official path (evaluate: validation + metrics), {args.full_runs} runs x {args.runs / max(args.full_runs, 1):.0f}: "
          f"{full_seconds:8.2f} s")
    print(f"statistics, bootstrap intervals only ({args.resamples} resamples):          {interval_seconds:8.2f} s")
    print(f"statistics, intervals + groups ({args.resamples} resamples, {groups} groups):   {statistics_seconds:8.2f} s")
    print(f"statistics / scoring: {100 * statistics_seconds / metric_seconds:.1f} % of metrics-only scoring, "
          f"{100 * statistics_seconds / full_seconds:.1f} % of the official scoring path")
    return 0


if __name__ == "__main__":
    sys.exit(main())
