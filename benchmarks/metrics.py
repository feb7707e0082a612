"""Benchmark: our metrics against the organizers' methods, from reading the files to the score.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/metrics.py`` (about a minute on 2 cores).

1. Concept detection on a generated 17,000-image test set (sizes like the 2024 test set): the
   organizers' evaluator (csv reader, per-line checks with a linear scan for repeated image ids,
   one scikit-learn ``f1_score`` per image) against ours (pandas reader, the same checks
   vectorized, ``include.metrics.concepts``). Goal: at least 100x faster, same score to 1e-12,
   peak memory under 300 MB. The project's full path (``validate_run``, which also builds the
   participant's report with Great Expectations, then ``score_run``) is timed as well.
2. nDCG@5 on 50 arguments x 5 ranks x 100 runs: ir-measures (pytrec_eval) against ours.

Libraries are imported before any timing starts; each figure is one run unless it says "best of".
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.metrics import score_run  # noqa: E402
from include.metrics.concepts import mean_image_f1  # noqa: E402
from include.metrics.retrieval import ndcg_at  # noqa: E402


# --- concept detection: data ----------------------------------------------------------------

def write_concept_files(folder: Path, images: int, seed: int = 2024) -> tuple[Path, Path]:
    """A gold concepts.csv and a run submission.csv like the 2024 test set (about 2,000 CUIs, Zipf)."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"C{n:07d}" for n in rng.choice(5_000_000, 2_000, replace=False)])
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()
    gold_rows, run_rows = [], []
    for n in range(images):
        image_id = f"ImageCLEFmedical_Caption_2024_test_{n:06d}"
        gold = list(dict.fromkeys(rng.choice(vocabulary, int(rng.integers(0 if n % 500 == 0 else 1, 10)), p=weights)))
        kept = [c for c in gold if rng.random() < 0.6]
        guessed = list(rng.choice(vocabulary, int(rng.integers(0, 5)), p=weights))
        predicted = list(dict.fromkeys(kept + guessed))
        if n % 7 == 0:
            predicted = [c.lower() for c in predicted]
        gold_rows.append((image_id, ";".join(gold)))
        run_rows.append((image_id, ";".join(predicted)))
    order = rng.permutation(images)  # runs need not follow the gold order
    gold_path, run_path = folder / "concepts.csv", folder / "submission.csv"
    with gold_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "CUIs"])
        writer.writerows(gold_rows)
    with run_path.open("w", newline="") as handle:
        csv.writer(handle).writerows(run_rows[i] for i in order)
    # The manual gold keeps only the 15 manually validated CUIs; needed by validate_run.
    pd.read_csv(gold_path, dtype=str, keep_default_na=False).to_csv(folder / "concepts_manual.csv", index=False)
    return gold_path, run_path


# --- concept detection: the organizers' evaluator -------------------------------------------

def organizers_concept_f1(run_path: Path, gold_path: Path) -> float:
    """The organizers' method: csv reader, per-line checks, per-image sklearn f1_score."""
    from sklearn.metrics import f1_score

    gold: dict[str, str] = {}
    with gold_path.open() as handle:
        for row in csv.reader(handle, delimiter=","):
            if row and "ID" in row[0]:
                continue
            gold[row[0]] = row[1]
    candidates: dict[str, str] = {}
    seen_images: list[str] = []  # their evaluator's list: one linear scan per line
    with run_path.open() as handle:
        for line_number, row in enumerate(csv.reader(handle, delimiter=",", quoting=csv.QUOTE_NONE), start=1):
            if line_number == 1 and row and "ID" in row[0]:
                continue
            if len(row) != 2:
                raise ValueError(f"line {line_number}: expected image id and concepts")
            image_id, concepts = row
            if image_id not in gold:
                raise ValueError(f"line {line_number}: unknown image id {image_id}")
            if image_id in seen_images:
                raise ValueError(f"line {line_number}: image id {image_id} repeated")
            cuis = [c for c in concepts.split(";") if c]
            if len(cuis) > 100:
                raise ValueError(f"line {line_number}: more than 100 concepts")
            for cui in cuis:
                if cuis.count(cui) > 1:
                    raise ValueError(f"line {line_number}: concept {cui} repeated")
            seen_images.append(image_id)
            candidates[image_id] = concepts
    if len(seen_images) != len(gold):
        raise ValueError("the run does not cover every test image")
    total, counted = 0.0, len(gold)
    for image_id in candidates:
        predicted_text, gold_text = candidates[image_id].upper(), gold[image_id].upper()
        gold_cuis = [] if gold_text.strip() == "" else gold_text.split(";")
        predicted = [] if predicted_text.strip() == "" else predicted_text.split(";")
        if not gold_cuis:
            counted -= 1
            continue
        union = sorted(set(gold_cuis + predicted))
        y_true = [int(c in gold_cuis) for c in union]
        y_pred = [int(c in predicted) for c in union]
        total += f1_score(y_true, y_pred, average="binary")
    return total / counted


# --- concept detection: ours ----------------------------------------------------------------

def read_concepts(path: Path, gold_ids: pd.Index | None = None) -> pd.DataFrame:
    """An ``ID,CUIs`` file as the canonical table, with the run checks vectorized."""
    with path.open() as handle:
        has_header = "ID" in handle.readline().split(",")[0]
    table = pd.read_csv(path, header=None, names=["ID", "CUIs"], skiprows=1 if has_header else 0,
                        dtype=str, keep_default_na=False)
    table["CUIs"] = [text.split(";") if text else [] for text in table["CUIs"]]
    if gold_ids is not None:
        if not table["ID"].isin(gold_ids).all():
            raise ValueError(f"unknown image id {table['ID'][~table['ID'].isin(gold_ids)].iloc[0]}")
        if table["ID"].duplicated().any() or len(table) != len(gold_ids):
            raise ValueError("every test image exactly once")
        if (table["CUIs"].str.len() > 100).any():
            raise ValueError("at most 100 concepts per image")
        pairs = table[["ID", "CUIs"]].explode("CUIs").dropna()
        if pairs.duplicated().any():
            raise ValueError("a concept repeated on a line")
    return table


def our_concept_f1(run_path: Path, gold_path: Path) -> float:
    gold = read_concepts(gold_path)
    run = read_concepts(run_path, pd.Index(gold["ID"]))
    return mean_image_f1(run, gold).value


def project_concept_f1(run_zip: Path, gold_dir: Path) -> float:
    from include.campaign.validation import validate_run

    outcome = validate_run("caption-concepts-csv", run_zip, gold_dir)
    if not outcome.valid:
        raise SystemExit(outcome.text)
    return score_run("caption-concepts-csv", ["concept_f1"], outcome.run, outcome.gold)["concept_f1"].value


def timed(function, *args, repeat: int = 1):
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = function(*args)
        times.append(time.perf_counter() - start)
    return value, min(times)


def peak_memory_mb(function, *args) -> float:
    tracemalloc.start()
    function(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def resident_memory_of_ours(run_path: Path, gold_path: Path) -> float:
    """Peak resident memory (MB) of a fresh process that imports, reads and scores with ours only."""
    # VmHWM, not getrusage: Linux carries a parent's peak over into the ru_maxrss of its children.
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[3]); "
            "import benchmarks.metrics as b; b.our_concept_f1(Path(sys.argv[1]), Path(sys.argv[2])); "
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    output = subprocess.run([sys.executable, "-c", code, str(run_path), str(gold_path), str(ROOT)],
                            capture_output=True, text=True, check=True).stdout
    return int(output.split()[-1]) / 1024


def concept_benchmark(folder: Path, images: int, with_project_path: bool) -> None:
    gold_path, run_path = write_concept_files(folder, images)
    print(f"== concept detection: {images:,} images, "
          f"{sum(1 for _ in gold_path.open()) - 1:,} gold lines, {gold_path.stat().st_size / 1e6:.1f} MB gold + "
          f"{run_path.stat().st_size / 1e6:.1f} MB run")
    ours, our_seconds = timed(our_concept_f1, run_path, gold_path, repeat=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # f1_score warns on every empty prediction
        theirs, their_seconds = timed(organizers_concept_f1, run_path, gold_path)
    memory = peak_memory_mb(our_concept_f1, run_path, gold_path)
    resident = resident_memory_of_ours(run_path, gold_path)
    print(f"organizers' method (csv + per-line checks + per-image sklearn f1_score): {their_seconds:8.3f} s  "
          f"score {theirs:.15f}")
    print(f"ours (pandas reader + vectorized checks + concept_f1), best of 5:        {our_seconds:8.3f} s  "
          f"score {ours:.15f}")
    print(f"ratio {their_seconds / our_seconds:.0f}x faster (goal 100x); |difference| {abs(theirs - ours):.1e} "
          f"(goal 1e-12)")
    print(f"our peak memory: {memory:.0f} MB allocated (tracemalloc), {resident:.0f} MB resident for a whole "
          f"process that only reads and scores (goal < 300 MB)")
    if with_project_path:
        run_zip = folder / "run.zip"
        with zipfile.ZipFile(run_zip, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(run_path, "submission.csv")
        project, project_seconds = timed(project_concept_f1, run_zip, folder)
        print(f"project path (validate_run with its report + score_run), one run:         {project_seconds:8.3f} s  "
              f"score {project:.15f}  ({their_seconds / project_seconds:.1f}x faster than the organizers')")


# --- nDCG@5 ------------------------------------------------------------------------------------

TABLE = {(2, 2): 2, (1, 2): 2, (0, 2): 1, (0, 1): 1, (1, 1): 1, (0, 0): 0}


def write_touche_files(folder: Path, arguments: int, runs: int, seed: int = 2025) -> tuple[Path, list[Path]]:
    rng = random.Random(seed)
    images = [f"I{n:07x}" for n in range(3_000)]
    pools, judgments = {}, []
    for a in range(arguments):
        argument = f"ARG{a:03d}"
        pools[argument] = rng.sample(images, 40)
        for image in pools[argument]:
            for annotator in ("a1", "a2"):
                for aspect in ("topic", "stance"):
                    judgments.append((argument, image, annotator, aspect, rng.choice([0, 0, 1, 2])))
    judgments_path = folder / "judgments.csv"
    pd.DataFrame(judgments, columns=["argument_id", "image_id", "annotator", "aspect", "value"]).to_csv(judgments_path, index=False)
    run_paths = []
    for r in range(runs):
        path = folder / f"run{r:03d}.jsonl"
        with path.open("w") as handle:
            for argument, pool in pools.items():
                candidates = list(dict.fromkeys(pool[:20] + images[:50]))  # judged and unjudged, distinct
                for rank, image in enumerate(rng.sample(candidates, 5), start=1):
                    handle.write(json.dumps({"argument_id": argument, "method": "retrieval", "image_id": image,
                                             "rank": rank, "tag": f"run{r}"}) + "\n")
        run_paths.append(path)
    return judgments_path, run_paths


def ir_measures_ndcg5(judgments_path: Path, run_paths: list[Path]) -> list[float]:
    """The baseline: combine grades with the table in Python, read each run, ir-measures nDCG@5."""
    import ir_measures
    from ir_measures import nDCG

    per_annotator: dict[tuple, dict[str, int]] = {}
    with judgments_path.open() as handle:
        for row in csv.DictReader(handle):
            per_annotator.setdefault((row["argument_id"], row["image_id"], row["annotator"]), {})[row["aspect"]] = int(row["value"])
    combined: dict[tuple, list[int]] = {}
    for (argument, image, _), aspects in per_annotator.items():
        values = sorted(aspects.values())
        combined.setdefault((argument, image), []).append(TABLE[tuple(values)] if len(values) == 2 else values[0])
    qrels = [ir_measures.Qrel(a, i, TABLE[tuple(sorted(v))] if len(v) == 2 else v[0]) for (a, i), v in combined.items()]
    scores = []
    for path in run_paths:
        with path.open() as handle:
            rows = [json.loads(line) for line in handle]
        run = [ir_measures.ScoredDoc(r["argument_id"], r["image_id"], float(-r["rank"])) for r in rows]
        scores.append(ir_measures.calc_aggregate([nDCG @ 5], qrels, run)[nDCG @ 5])
    return scores


def our_ndcg5(judgments_path: Path, run_paths: list[Path]) -> list[float]:
    judgments = pd.read_csv(judgments_path, dtype={"argument_id": str, "image_id": str, "annotator": str, "aspect": str})
    gold = {"judgments": judgments, "arguments": pd.DataFrame({"argument_id": judgments["argument_id"].unique()})}
    scores = []
    for path in run_paths:
        with path.open() as handle:
            rows = [json.loads(line) for line in handle]
        run = pd.DataFrame({column: [row[column] for row in rows] for column in ("argument_id", "image_id", "rank")})
        scores.append(ndcg_at(run, gold, {}, 5).value)
    return scores


def parse_runs_only(run_paths: list[Path]) -> int:
    """The floor both sides share: parsing the JSON lines of every run."""
    rows = 0
    for path in run_paths:
        with path.open() as handle:
            rows += len([json.loads(line) for line in handle])
    return rows


def ndcg_benchmark(folder: Path, arguments: int, runs: int) -> None:
    judgments_path, run_paths = write_touche_files(folder, arguments, runs)
    print(f"== nDCG@5: {arguments} arguments x 5 ranks x {runs} runs, "
          f"{sum(1 for _ in judgments_path.open()) - 1:,} aspect judgements")
    theirs, their_seconds = timed(ir_measures_ndcg5, judgments_path, run_paths, repeat=3)
    ours, our_seconds = timed(our_ndcg5, judgments_path, run_paths, repeat=3)
    difference = max(abs(a - b) for a, b in zip(theirs, ours))
    print(f"ir-measures (pytrec_eval), best of 3: {their_seconds:8.3f} s  mean nDCG@5 {statistics.mean(theirs):.15f}")
    print(f"ours (numpy), best of 3:              {our_seconds:8.3f} s  mean nDCG@5 {statistics.mean(ours):.15f}")
    _, parse_seconds = timed(parse_runs_only, run_paths, repeat=3)
    print(f"ratio {their_seconds / our_seconds:.2f}x; largest per-run |difference| {difference:.1e}; "
          f"parsing the run files alone takes {parse_seconds:.3f} s of each")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=17_000)
    parser.add_argument("--arguments", type=int, default=50)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--skip-project-path", action="store_true", help="do not time validate_run + score_run")
    args = parser.parse_args(argv)
    import ir_measures  # noqa: F401  (imported before timing, like scikit-learn below)
    import sklearn.metrics  # noqa: F401

    with tempfile.TemporaryDirectory(prefix="clef-metrics-bench-") as tmp:
        concept_folder, touche_folder = Path(tmp) / "concepts", Path(tmp) / "touche"
        concept_folder.mkdir()
        touche_folder.mkdir()
        concept_benchmark(concept_folder, args.images, not args.skip_project_path)
        ndcg_benchmark(touche_folder, args.arguments, args.runs)
    print(f"this benchmark process (both methods, validate_run with Great Expectations, ir-measures): "
          f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
