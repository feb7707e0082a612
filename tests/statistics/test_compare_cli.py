"""``python -m include.cli compare``: two runs on the same gold, tested as the leaderboards test them."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from include.campaign import significance as st
from include.cli import main

ROOT = Path(__file__).resolve().parents[2]
IMAGES = 200


def compare(capsys, *args):
    code = main(["compare", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def gans(tmp_path):
    rng = random.Random(4)
    gold = {f"g{i}": rng.randint(0, 1) for i in range(IMAGES)}
    (tmp_path / "gold").mkdir()
    (tmp_path / "gold/labels.csv").write_text("id,label\n" + "".join(f"{i},{v}\n" for i, v in gold.items()))

    def run(name: str, accuracy: float, seed: int) -> Path:
        flip = random.Random(seed)
        labels = {i: (v if flip.random() < accuracy else 1 - v) for i, v in gold.items()}
        path = tmp_path / f"{name}.csv"
        path.write_text("".join(f"{i},{v}\n" for i, v in labels.items()))
        return path

    return tmp_path, gold, run


def labels(path: Path) -> dict:
    return dict(line.split(",") for line in path.read_text().split())


def test_a_large_difference_is_significant_and_the_numbers_are_the_functions(gans, capsys):
    folder, gold, run = gans
    strong, weak = run("strong", 0.95, 1), run("weak", 0.65, 2)
    code, out, err = compare(capsys, "--task", "gans-detection", "--gold", str(folder / "gold"), str(strong), str(weak),
                             "--resamples", "2000")
    assert code == 0, err
    document = json.loads(out)
    ids = sorted(gold)
    kappas = [cohen_kappa_score([gold[i] for i in ids], [int(labels(p)[i]) for i in ids]) for p in (strong, weak)]
    assert document["metric"] == "gans_kappa" and document["form"] == "kappa" and document["items"] == IMAGES
    assert document["runs"]["a"]["value"] == pytest.approx(kappas[0], abs=1e-12)
    assert document["difference"] == pytest.approx(kappas[0] - kappas[1], abs=1e-12)
    assert document["significant"] is True and document["verdict"].startswith("run A is significantly better on gans_kappa")
    cells = [np.array([[gold[i] == g and int(labels(p)[i]) == q for g in (0, 1) for q in (0, 1)] for i in ids], dtype=float)
             for p in (strong, weak)]
    expected = st.paired_permutation_test(cells[0], cells[1], "kappa", resamples=2000)
    assert document["tests"]["permutation"]["p_value"] == expected.p_value
    assert document["tests"]["bootstrap"]["p_value"] < 0.01 and "t_test" not in document["tests"]
    assert document["settings"]["seed"] == st.DEFAULT_SEED


def test_the_same_run_twice_is_no_difference_and_a_mean_metric_also_gets_the_t_test(gans, capsys):
    folder, _, run = gans
    one = run("one", 0.8, 3)
    code, out, _ = compare(capsys, "--task", "gans-detection", "--metric", "gans_accuracy", "--gold", str(folder / "gold"),
                           str(one), str(one), "--resamples", "500", "--seed", "9")
    document = json.loads(out)
    assert code == 0 and document["significant"] is False and document["difference"] == 0
    assert document["tests"]["permutation"]["p_value"] == 1.0 and document["tests"]["t_test"]["p_value"] == 1.0
    assert document["settings"]["seed"] == 9 and document["verdict"].startswith("no significant difference on gans_accuracy")


def test_an_invalid_run_exits_1_with_its_report(gans, capsys):
    folder, _, run = gans
    broken = folder / "broken.csv"
    broken.write_text("g0,yes\n")
    code, out, err = compare(capsys, "--task", "gans-detection", "--gold", str(folder / "gold"), str(run("ok", 0.9, 1)), str(broken))
    assert code == 1 and out == "" and "broken.csv is invalid" in err


@pytest.mark.parametrize("args, message", [
    (["--metric", "concept_f1"], "task gans-detection has no metric 'concept_f1'"),
    (["--resamples", "0"], "--resamples must be at least 1"),
    (["--alpha", "2"], "--alpha must be between 0 and 1"),
])
def test_usage_errors_exit_2_with_the_reason(gans, capsys, args, message):
    folder, _, run = gans
    one = run("one", 0.8, 3)
    code, _, err = compare(capsys, "--task", "gans-detection", "--gold", str(folder / "gold"), str(one), str(one), *args)
    assert code == 2 and message in err


def test_a_metric_without_item_components_is_refused_with_the_alternatives(tmp_path, capsys):
    (tmp_path / "gold").mkdir()
    answers = [{"index": 1, "img_id": "cl1", "question": "Any polyps?", "answer": "Yes, one polyp."}]
    (tmp_path / "gold/answers.json").write_text(json.dumps(answers))
    (tmp_path / "run.json").write_text(json.dumps(answers))
    code, _, err = compare(capsys, "--task", "vqa-gi-answering", "--metric", "vqa_bleu", "--gold", str(tmp_path / "gold"),
                           str(tmp_path / "run.json"), str(tmp_path / "run.json"))
    assert code == 2 and "vqa_bleu" in err and "no item components" in err and "--metric" in err


def test_compare_runs_as_a_command(tmp_path):
    gold = tmp_path / "gold"
    gold.mkdir()
    (gold / "concepts.csv").write_text("ID,CUIs\ni1,C0040405;C0817096\ni2,C0024485\ni3,C0032743\n")
    (gold / "concepts_manual.csv").write_text("ID,CUIs\ni1,C0040405\ni2,C0024485\ni3,\n")
    runs = []
    for name, rows in (("a", "i1,C0040405;C0817096\ni2,C0024485\ni3,C0032743\n"), ("b", "i1,C0040405\ni2,\ni3,C0032743\n")):
        path = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("submission.csv", rows)
        runs.append(str(path))
    answer = subprocess.run([sys.executable, "-m", "include.cli", "compare", "--task", "caption-concept-detection",
                             "--gold", str(gold), *runs, "--resamples", "200"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert answer.returncode == 0, answer.stderr
    document = json.loads(answer.stdout)
    # a: F1 1 on every image; b: i1 2/3, i2 0, i3 1 -> mean 5/9.
    assert document["runs"]["a"]["value"] == 1.0 and document["runs"]["b"]["value"] == pytest.approx(5 / 9)
    assert document["items"] == 3 and document["significant"] is False  # 3 items cannot separate them
