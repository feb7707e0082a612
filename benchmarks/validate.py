"""Benchmark: validating a 100,000-line concept-detection run versus pandas reading the same file.

Prints, side by side, the time pandas alone needs to read the run (``read_csv`` straight from the
zip, the baseline) and the time of ``validate_run`` on it, both the best of several interleaved
repeats so that load from other processes affects both alike. Validation is measured warm: the
Great Expectations context is built once per process and the gold folder is cached once read, as
in a scoring pass over many runs; both one-off costs are printed too. Peak memory is measured in a
fresh child process that imports everything, loads the gold and validates the run once.
Goals: validation within 5x of the bare read, peak memory under 500 MB.

    PYTHONPATH=. .venv/bin/python benchmarks/validate.py [--lines 100000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pandas as pd

FORMAT = "caption-concepts-csv"
CUI_POOL_SIZE = 3000
MEMORY_PROBE = """
import json, sys
def peak_mb():
    # VmHWM, not getrusage: ru_maxrss would include the parent's peak inherited across fork/exec.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
from include.campaign.validation import load_gold, validate_run
from include.campaign.validation.expectations import batch_definition
batch_definition()
after_imports = peak_mb()
load_gold(sys.argv[1], sys.argv[3])
after_gold = peak_mb()
outcome = validate_run(sys.argv[1], sys.argv[2], sys.argv[3])
print(json.dumps({"valid": outcome.valid, "imports": after_imports, "gold": after_gold, "peak": peak_mb()}))
"""


def write_run_and_gold(folder: Path, lines: int, seed: int = 2025) -> tuple[Path, Path]:
    """A valid run with 1 to 8 concepts per image and its gold (the same concepts)."""
    rng = random.Random(seed)
    pool = [f"C{rng.randrange(10**7):07d}" for _ in range(CUI_POOL_SIZE)]
    ids = [f"ImageCLEFmedical_Caption_2025_test_{n:06d}" for n in range(1, lines + 1)]
    text = "ID,CUIs\n" + "".join(f"{image},{';'.join(rng.sample(pool, rng.randint(1, 8)))}\n" for image in ids)
    run = folder / "run.zip"
    with zipfile.ZipFile(run, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("submission.csv", text)
    gold = folder / "gold"
    gold.mkdir()
    (gold / "concepts.csv").write_text(text, encoding="utf-8")
    (gold / "concepts_manual.csv").write_text(text, encoding="utf-8")
    return run, gold


def seconds(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure_memory(run: Path, gold: Path) -> dict:
    """Peak resident memory of a fresh process validating the run once."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE, FORMAT, str(run), str(gold)],
                           capture_output=True, text=True, env=env, check=True)
    return json.loads(probe.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    from include.campaign.validation import gold as gold_module
    from include.campaign.validation import validate_run

    with tempfile.TemporaryDirectory() as folder:
        run, gold = write_run_and_gold(Path(folder), args.lines)
        csv_bytes = zipfile.ZipFile(run).infolist()[0].file_size
        print(f"run: {args.lines} lines, {run.stat().st_size / 1e6:.1f} MB zipped ({csv_bytes / 1e6:.1f} MB CSV)")
        cold = seconds(lambda: validate_run(FORMAT, run, gold))
        outcome = validate_run(FORMAT, run, gold)
        assert outcome.valid and len(outcome.run) == args.lines, outcome.text
        reads, validations, gold_loads = [], [], []
        for _ in range(args.repeat):
            reads.append(seconds(lambda: pd.read_csv(run)))
            validations.append(seconds(lambda: validate_run(FORMAT, run, gold)))
            gold_module._cache.clear()
            gold_loads.append(seconds(lambda: gold_module.load_gold(FORMAT, gold)))
        memory = measure_memory(run, gold)

    bare, warm, gold_load = min(reads), min(validations), min(gold_loads)
    ratio = warm / bare
    rows = [
        ("pandas read_csv of the run (baseline)", f"{bare:.3f} s", "1.00x"),
        ("validate_run, warm (gold cached, GX context built)", f"{warm:.3f} s", f"{ratio:.2f}x  (goal <= 5x)"),
        ("loading the gold folder once (2 x 100,000 lines)", f"{gold_load:.3f} s", f"{gold_load / bare:.2f}x"),
        ("validate_run incl. gold loading", f"{warm + gold_load:.3f} s", f"{(warm + gold_load) / bare:.2f}x"),
        ("first call of the process (GX import, context, gold)", f"{cold:.3f} s", "one-off"),
        ("peak memory, fresh process validating once", f"{memory['peak']:.0f} MB", "goal < 500 MB"),
        ("  of which GX, pandas and the interpreter", f"{memory['imports']:.0f} MB", ""),
        ("  of which the gold tables", f"{memory['gold'] - memory['imports']:.0f} MB", ""),
        ("  of which the validation itself", f"{memory['peak'] - memory['gold']:.0f} MB", ""),
    ]
    print(f"{'measure (best of ' + str(args.repeat) + ')':<56}{'figure':>12}  vs baseline / goal")
    for label, figure, note in rows:
        print(f"{label:<56}{figure:>12}  {note}")
    met = ratio <= 5 and memory["peak"] < 500 and memory["valid"]
    print("goals met" if met else "GOALS NOT MET")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
