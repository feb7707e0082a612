"""The scoring benchmarks' shared set-up: one concept-detection task, its data, staged as collection leaves it.

``benchmarks/scoring_dag.py`` (``dag.test()``) and ``benchmarks/cluster_scoring.py`` (the local cluster)
score the same kind of task: a campaign file with one ImageCLEF caption concept-detection task, gold
and manual-concept gold of ``images`` images, ``runs`` zipped runs of varying quality, and the
collection manifest run_collection would have written. The baseline both print is the validation and
metric code on the same runs, one after the other in a fresh Python process (:func:`baseline_seconds`).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TASK = "caption-concept-detection"
MANUAL = ["C0002978", "C0040405", "C0024485", "C0032743", "C0041618", "C1306645", "C1140618", "C0037949", "C0030797", "C0023216"]
CAMPAIGN_YAML = """id: bench
name: {name}
lab: a benchmark
timezone: UTC
organizers: [{{name: Chair, email: chair@example.org}}]
contact_email: chair@example.org
schedule:
  registration_opens: 2025-01-01
  dev_data_release: 2025-01-02
  test_data_release: 2025-01-03
  registration_closes: 2025-01-04
  run_deadline: 2025-01-05
  results_release: 2025-01-06
  working_notes_deadline: 2025-01-07
  notification: 2025-01-08
  camera_ready: 2025-01-09
  conference_start: 2025-01-10
  conference_end: 2025-01-11
tasks:
  - {{id: caption-concept-detection, title: Concepts, run_format: caption-concepts-csv, metrics: [concept_f1, concept_f1_manual], runs_allowed: 10}}
"""


def write_campaign(work: Path, name: str) -> Path:
    """The benchmark's campaign file ``work/campaigns/bench.yaml`` (id ``bench``), written; returns its path."""
    path = work / "campaigns" / "bench.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CAMPAIGN_YAML.format(name=name))
    return path


def concepts_csv(rows: dict[str, list[str]]) -> bytes:
    return ("\n".join(["ID,CUIs"] + [f"{image},{';'.join(cuis)}" for image, cuis in rows.items()]) + "\n").encode()


def make_data(images: int, runs: int, seed: int = 7) -> tuple[bytes, bytes, list[bytes]]:
    """Gold, manual-concept gold and ``runs`` zipped runs (each a random share of the gold plus noise)."""
    rng = random.Random(seed)
    vocabulary = MANUAL + [f"C{rng.randrange(10**6, 10**7):07d}" for _ in range(400)]
    gold = {f"ImageCLEFmedical_Caption_2025_test_{i:06d}": rng.sample(vocabulary, rng.randint(1, 6)) for i in range(images)}
    manual = {image: [c for c in cuis if c in MANUAL] for image, cuis in gold.items()}
    run_files = []
    for _ in range(runs):
        quality = rng.random()
        predicted = {image: list(dict.fromkeys([c for c in cuis if rng.random() < quality] + rng.sample(vocabulary, rng.randint(0, 3))))
                     for image, cuis in gold.items()}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("submission.csv", concepts_csv(predicted))
        run_files.append(buffer.getvalue())
    return concepts_csv(gold), concepts_csv(manual), run_files


def stage(ctx, gold: bytes, manual: bytes, runs: list[bytes]) -> None:
    """Gold and a collection manifest as run_collection leaves them (the collection itself is not timed)."""
    from include.campaign.store import dump_json

    ctx.store.put_bytes(ctx.layout.gold(TASK) + "concepts.csv", gold)
    ctx.store.put_bytes(ctx.layout.gold(TASK) + "concepts_manual.csv", manual)
    entries = []
    for index, data in enumerate(runs):
        team, run = f"team-{index // 10:04d}", f"run-{index % 10 + 1:02d}"
        entries.append({"team": team, "run": run, "key": ctx.layout.collected(TASK) + f"{team}/{run}", "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(), "uploaded_at": "2025-01-05T00:00:00+00:00", "source_version": None})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda pair: ctx.store.put_bytes(pair[0]["key"], pair[1]), zip(entries, runs)))
    ctx.store.put_bytes(ctx.layout.collection_manifest(TASK), dump_json({"task": TASK, "deadline": "2025-01-05T23:59:59+00:00", "collected": entries,
                                                                          "late": [], "refused": [], "dropped_over_limit": []}))


def baseline_seconds(campaign_file: Path, gold: bytes, manual: bytes, runs: list[bytes], work: Path) -> tuple[float, float]:
    """The baseline: seconds of validation and of metric code on the same runs, one after the other in a
    fresh Python process, so it pays the one-time imports (great_expectations, pandas...) once, as the
    scoring's first run does, whether or not this process imported them already."""
    folder = work / "baseline"
    (folder / "gold").mkdir(parents=True, exist_ok=True)
    (folder / "gold" / "concepts.csv").write_bytes(gold)
    (folder / "gold" / "concepts_manual.csv").write_bytes(manual)
    for index, data in enumerate(runs):
        (folder / f"run-{index:06d}.zip").write_bytes(data)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    answer = subprocess.run([sys.executable, __file__, str(campaign_file), str(folder)], check=True, capture_output=True, text=True, env=env)
    validating, scoring = json.loads(answer.stdout.strip().splitlines()[-1])
    return validating, scoring


def _time_runs(campaign_file: Path, folder: Path) -> tuple[float, float]:
    from include.campaign.config import load_campaign
    from include.campaign.validation import validate_run
    from include.metrics import score_run

    task = load_campaign(campaign_file).task(TASK)
    validating = scoring = 0.0
    for path in sorted(folder.glob("run-*.zip")):
        t0 = time.perf_counter()
        outcome = validate_run(task.run_format, path, folder / "gold")
        t1 = time.perf_counter()
        score_run(task.run_format, list(task.metrics), outcome.run, outcome.gold)
        validating, scoring = validating + t1 - t0, scoring + time.perf_counter() - t1
    return validating, scoring


if __name__ == "__main__":
    print(json.dumps(_time_runs(Path(sys.argv[1]), Path(sys.argv[2]))))
