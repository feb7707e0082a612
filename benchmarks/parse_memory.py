"""Benchmark: peak memory of parsing one text run (CSV, JSON, JSON lines) per MiB of its text.

A run's text is read whole and parsed into a DataFrame (then checked by the Great Expectations
suite): memory grows with the text, about ten-fold. This prints, per text format, the peak memory
the parse adds for runs of a few sizes (each in a fresh child process), the memory per MiB, and
what the campaign's ``run_limits.max_text_bytes`` then allows at most, next to the baseline of the
2 GiB ``max_uncompressed_bytes`` that bounded a zipped text run before. The largest real
ImageCLEF 2025 run of each format (estimated from its test set) is printed beside it.

    PYTHONPATH=. .venv/bin/python benchmarks/parse_memory.py [--mib 4 16]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import sys
def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
from include.campaign.validation.findings import Findings
from include.campaign.validation.schema import run_schema
from include.campaign.validation.text import decode_text
from include.campaign.validation.parse_csv import parse_csv
from include.campaign.validation.parse_json import parse_json_run
from include.campaign.validation.speed import paused_gc
schema = run_schema(sys.argv[1])
before = peak_mb()
data = open(sys.argv[2], "rb").read()
findings, warnings = Findings(), Findings()
with paused_gc():
    text = decode_text(data, "run", findings)
    if schema.file.type == "csv":
        frame = parse_csv(text, "run", schema, findings)
    else:
        frame = parse_json_run(text, "run", schema, findings, warnings)
print(peak_mb() - before, len(frame), findings.rules())
"""
# format -> (writer of n bytes of run text, the largest real 2025 run in MiB and how it was estimated)
REAL_RUNS = {
    "caption-concepts-csv": (16.3, "about 17,000 test images x at most 100 CUIs of 9 bytes + the id"),
    "caption-text-csv": (8.0, "about 17,000 test images x a caption of up to 450 characters"),
    "vqa-gi-answers-json": (2.0, "a few thousand questions x a sentence-long answer"),
    "touche-results-jsonl": (0.5, "a few hundred arguments x 5 ranked images"),
}


def concepts(size: int, rng: random.Random) -> bytes:
    pool = [f"C{rng.randrange(10**7):07d}" for _ in range(3000)]
    lines, total, n = ["ID,CUIs\n"], 8, 0
    while total < size:
        n += 1
        line = f"ImageCLEFmedical_Caption_2025_test_{n:07d},{';'.join(rng.sample(pool, rng.randint(1, 8)))}\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()


def captions(size: int, rng: random.Random) -> bytes:
    words = ["chest", "ct", "scan", "showing", "a", "lesion", "of", "the", "left", "lung", "mri", "axial", "view", "with", "contrast"]
    lines, total, n = ["ID,Caption\n"], 11, 0
    while total < size:
        n += 1
        line = f'ImageCLEFmedical_Caption_2025_test_{n:07d},"{" ".join(rng.choices(words, k=rng.randint(5, 40)))}"\n'
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()


def vqa_answers(size: int, rng: random.Random) -> bytes:
    items, total, n = [], 2, 0
    while total < size:
        n += 1
        item = {"index": n, "img_id": f"cl8k{n:07d}", "question": "Are there any polyps in the image?", "answer": "Yes, there is one polyp of about 5 mm."}
        items.append(item)
        total += len(json.dumps(item)) + 2
    return json.dumps(items, indent=1).encode()


def touche(size: int, rng: random.Random) -> bytes:
    lines, total, n = [], 0, 0
    while total < size:
        n += 1
        for rank in range(1, 6):
            line = json.dumps({"argument_id": f"arg{n:07d}", "method": "retrieval", "image_id": f"I{rng.randrange(10**6):06d}", "rank": rank, "tag": "team"}) + "\n"
            lines.append(line)
            total += len(line)
    return "".join(lines).encode()


WRITERS = {"caption-concepts-csv": concepts, "caption-text-csv": captions, "vqa-gi-answers-json": vqa_answers, "touche-results-jsonl": touche}


def measure(format_name: str, path: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    probe = subprocess.run([sys.executable, "-c", PROBE, format_name, str(path)], capture_output=True, text=True, env=env, check=True, timeout=600)
    return float(probe.stdout.split()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, nargs="+", default=[4, 16])
    args = parser.parse_args(argv)
    from include.campaign.config import RunLimits

    limits = RunLimits()
    print(f"max_text_bytes {limits.max_text_bytes / 2**20:.0f} MiB (now); baseline max_uncompressed_bytes {limits.max_uncompressed_bytes / 2**30:.0f} GiB")
    print(f"{'format':<24}{'run MiB':>8}{'parse MB':>10}{'MB/MiB':>8}{'largest real run':>18}{'at the limit':>14}{'at 2 GiB (before)':>19}")
    with tempfile.TemporaryDirectory() as folder:
        for format_name, writer in WRITERS.items():
            slopes = []
            for mib in args.mib:
                path = Path(folder) / f"{format_name}-{mib}"
                data = writer(int(mib * 2**20), random.Random(2025))
                path.write_bytes(data)
                del data
                peak = measure(format_name, path)
                slopes.append(peak / mib)
                print(f"{format_name:<24}{mib:>8.0f}{peak:>10.0f}{peak / mib:>8.1f}")
                path.unlink()
            slope = max(slopes)
            real, why = REAL_RUNS[format_name]
            print(f"{'':<24}{'':>8}{'':>10}{'':>8}{real:>14.1f} MiB{slope * limits.max_text_bytes / 2**20 / 1024:>11.2f} GB"
                  f"{slope * 2048 / 1024:>16.1f} GB   ({why})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
