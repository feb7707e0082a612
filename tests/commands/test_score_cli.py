"""``python -m include.cli score``: validate then score one run of every task with a CPU metric.

Each case writes a small gold folder and run in the task's real file format and checks the
printed JSON against values worked out by hand in the comments. The command runs in-process
(``include.cli.main``) so the heavy imports are paid once; one case runs as a real subprocess.
"""
from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sacrebleu
import tifffile

from include.cli import main

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def tiff(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, mask.astype(np.uint8))
    return buffer.getvalue()


# --- one writer per task: (gold folder, run file, expected values) ---------------------------

def concepts_case(tmp: Path):
    write(tmp / "gold/concepts.csv", "ID,CUIs\ni1,C0040405;C0817096\ni2,C0024485\ni3,\n")
    write(tmp / "gold/concepts_manual.csv", "ID,CUIs\ni1,C0040405\ni2,C0024485\ni3,\n")
    run = write_zip(tmp / "run.zip", {"submission.csv": b"ID,CUIs\ni1,c0040405\ni2,C0024485;C0032743\ni3,C0000726\n"})
    # i1: 2*1/(2+1); i2: 2*1/(1+2); i3 has no gold concept and is left out. Manual: i1 1, i2 2/3.
    return "caption-concept-detection", run, {"concept_f1": 2 / 3, "concept_f1_manual": 5 / 6}


def captions_case(tmp: Path):
    write(tmp / "gold/captions.csv", 'ID,Caption\ni1,"CT scan of the chest shows a mass."\ni2,"MRI of the brain with 2 lesions."\n')
    run = write_zip(tmp / "run.zip", {"submission.csv": b'ID,Caption\ni1,"CT scan of the chest shows a mass."\ni2,"MRI of the brain"\n'})
    # i2: gold "mri of the brain with number lesions" (7 words), prediction its first 4 words:
    # ROUGE-1 F = 8/11; BLEU: every n-gram precision 1, brevity penalty exp(1 - 7/4).
    return "caption-prediction", run, {"caption_rouge1": (1 + 8 / 11) / 2, "caption_bleu": (1 + math.exp(-0.75)) / 2,
                                       "caption_relevance": None, "caption_bertscore": None}


def gans_detection_case(tmp: Path):
    write(tmp / "gold/labels.csv", "id,label\ng1,1\ng2,0\ng3,1\ng4,0\n")
    run = write(tmp / "run.csv", "g1,1\ng2,1\ng3,1\ng4,0\n")
    # Observed agreement 3/4, chance agreement 1/2 * 3/4 + 1/2 * 1/4 = 1/2: kappa 1/2; F1 2*2/(2*2+1).
    return "gans-detection", run, {"gans_kappa": 0.5, "gans_accuracy": 0.75, "gans_f1": 0.8}


def gans_attribution_case(tmp: Path):
    write(tmp / "gold/subsets.csv", "id,subset\ng1,t1\ng2,t2\ng3,t3\ng4,t4\n")
    run = write(tmp / "run.csv", "g1,t1\ng2,t3\ng3,t3\ng4,t1\n")
    return "gans-attribution", run, {"attribution_accuracy": 0.5}


def vqa_case(tmp: Path):
    gold = [{"index": 1, "img_id": "cl1", "question": "Are there any polyps?", "answer": "Yes, there is one polyp."},
            {"index": 2, "img_id": "cl1", "question": "Is there text?", "answer": "No text is visible in the image."}]
    write(tmp / "gold/answers.json", json.dumps(gold))
    run = write(tmp / "run.json", json.dumps(gold))
    # A run identical to the gold: BLEU and every ROUGE are 1.
    return "vqa-gi-answering", run, {"vqa_bleu": 1.0, "vqa_rouge1": 1.0, "vqa_rouge2": 1.0, "vqa_rougeL": 1.0}


def magic_masks_case(tmp: Path):
    square, top_row = np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)
    square[:2, :2], top_row[0, :] = 255, 255
    for annotator, mask in (("ann0", square), ("ann1", square), ("ann2", top_row)):
        (tmp / "gold/masks").mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(tmp / f"gold/masks/IMG_ENC00001_00001_mask_{annotator}.tiff", mask)
    run = write_zip(tmp / "run.zip", {"IMG_ENC00001_00001_mask_sys.tiff": tiff(top_row // 255)})
    # Majority (2 of 3) is the 2x2 square; the top row overlaps it on 2 pixels: Dice 4/8, Jaccard 2/6.
    # Per annotator Dice: 4/8, 4/8, 8/8 -> max 1, mean 2/3.
    return "magic-segmentation", run, {"magic_dice": 0.5, "magic_jaccard": 1 / 3, "magic_dice_mean_of_max": 1.0,
                                       "magic_dice_mean_of_mean": 2 / 3}


def closed_vqa_case(tmp: Path):
    write(tmp / "gold/closed_vqa.json", json.dumps([{"encounter_id": "ENC00001", "CQID010-001": 0, "CQID011-001": 2,
                                                      "CQID011-002": 4}]))
    run = write(tmp / "run.json", json.dumps([{"encounter_id": "ENC00001", "CQID010-001": 1, "CQID011-001": 2,
                                               "CQID011-002": 3}]))
    # CQID010: {0} vs {1} -> 0; CQID011: {2, 4} vs {2, 3} -> 1/2; accuracy_all 1/4.
    return "magic-closed-vqa", run, {"magic_accuracy_all": 0.25}


def touche_case(tmp: Path):
    grades = {"I001": ((2, 2), (2, 2)), "I002": ((2, 1), (1, 1)), "I003": ((0, 1), (0, 0))}
    rows = [f"arg001,{image},{annotator},{aspect},{value}" for image, per_annotator in grades.items()
            for annotator, values in zip(("a1", "a2"), per_annotator) for aspect, value in zip(("topic", "stance"), values)]
    write(tmp / "gold/judgments.csv", "argument_id,image_id,annotator,aspect,value\n" + "\n".join(rows) + "\n")
    write(tmp / "gold/arguments.csv", "argument_id\narg001\n")
    write(tmp / "gold/images.txt", "".join(f"I{n:03d}\n" for n in range(1, 11)))
    ranked = ["I003", "I001", "I004", "I005", "I006"]
    run = write(tmp / "results.jsonl", "".join(json.dumps({"argument_id": "arg001", "method": "retrieval", "image_id": i,
                                                            "rank": r, "tag": "team-run-1"}) + "\n"
                                               for r, i in enumerate(ranked, start=1)))
    # Grades by the table: I001 2, I002 (2, 1) -> 2, I003 (1, 0) -> 1. Ideal 2, 2, 1; the run ranks 1, 2, 0, 0, 0.
    ideal = 2 + 2 / math.log2(3) + 1 / 2
    return "argument-image-retrieval", run, {"ndcg_at_5": (1 + 2 / math.log2(3)) / ideal, "ndcg_at_1": 0.5,
                                             "ndcg_at_3": (1 + 2 / math.log2(3)) / ideal}


def topicto_case(tmp: Path):
    write(tmp / "gold/references.json", json.dumps([{"id": "s1", "ref": "je manger pomme"}, {"id": "s2", "ref": "il aller école"}]))
    run = write(tmp / "run.json", json.dumps([{"id": "s1", "hyp": "je manger pomme"}, {"id": "s2", "hyp": "il aller maison"}]))
    bleu = sacrebleu.corpus_bleu(["je manger pomme", "il aller maison"], [["je manger pomme", "il aller école"]]).score
    return "topicto", run, {"picto_er": 100 / 6, "picto_sacrebleu": bleu}  # one substitution in six terms


def reasoning_case(tmp: Path):
    gold = [{"id": "q1", "answer_key": "A", "language": "english"}, {"id": "q2", "answer_key": "C", "language": "english"},
            {"id": "q3", "answer_key": "B", "language": "bulgarian"}]
    write(tmp / "gold/answers.json", json.dumps(gold))
    run = write(tmp / "run.json", json.dumps([{**gold[0]}, {**gold[1], "answer_key": "B"}, {**gold[2]}]))
    return "multimodal-reasoning", run, {"mmr_accuracy": 2 / 3}


CASES = [concepts_case, captions_case, gans_detection_case, gans_attribution_case, vqa_case, magic_masks_case,
         closed_vqa_case, touche_case, topicto_case, reasoning_case]


def score(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["score", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__.removesuffix("_case"))
def test_score_prints_the_task_scores(case, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CLEF_MODEL_DIR", raising=False)
    task, run, expected = case(tmp_path)
    per_item = tmp_path / "per_item.csv"
    code, out, err = score(capsys, "--task", task, "--run", str(run), "--gold", str(tmp_path / "gold"),
                           "--per-item", str(per_item))
    assert code == 0, err
    document = json.loads(out)
    assert document["task"] == task and document["primary"] == next(iter(document["metrics"]))
    for name, value in expected.items():
        if value is None:
            assert document["metrics"][name] is None
            assert document["not_computed"][name].startswith("not computed: ")
            assert "not available: no model directory is set (CLEF_MODEL_DIR)" in document["not_computed"][name]
        else:
            assert abs(document["metrics"][name] - value) < 1e-9, name
    header = per_item.read_text().splitlines()[0].split(",")
    assert header[0] == "item" and set(n for n, v in expected.items() if v is not None) <= set(header[1:])


def test_breakdowns_are_printed(tmp_path, capsys):
    task, run, _ = reasoning_case(tmp_path)
    code, out, _ = score(capsys, "--task", task, "--run", str(run), "--gold", str(tmp_path / "gold"))
    assert code == 0
    assert json.loads(out)["breakdown"]["mmr_accuracy"] == {"bulgarian": 1.0, "english": 0.5}


def test_an_invalid_run_exits_1_with_the_report_on_stderr(tmp_path, capsys):
    write(tmp_path / "gold/labels.csv", "id,label\ng1,1\ng2,0\n")
    run = write(tmp_path / "run.csv", "g1,1\ng1,0\n")  # g1 twice, g2 missing
    code, out, err = score(capsys, "--task", "gans-detection", "--run", str(run), "--gold", str(tmp_path / "gold"))
    assert code == 1 and out == ""
    assert "run.csv" in err and "g1" in err and "Traceback" not in err


@pytest.mark.parametrize("arguments, message", [
    (["--task", "no-such-task"], "no task 'no-such-task'"),
    (["--task", "gans-detection", "--run", "missing.csv"], "run file missing.csv not found"),
    (["--task", "gans-detection", "--config", "missing.yaml"], "missing.yaml"),
])
def test_usage_errors_exit_2_with_a_message(arguments, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gold").mkdir()
    write(tmp_path / "run.csv", "g1,1\n")
    base = {"--run": "run.csv", "--gold": "gold"}
    for flag, value in zip(arguments[::2], arguments[1::2]):
        base[flag] = value
    code, _, err = score(capsys, *[item for pair in base.items() for item in pair])
    assert code == 2 and message in err and "Traceback" not in err


def test_the_real_command_line(tmp_path):
    task, run, expected = gans_detection_case(tmp_path)
    completed = subprocess.run([sys.executable, "-m", "include.cli", "score", "--task", task, "--run", str(run),
                                "--gold", str(tmp_path / "gold")], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["metrics"] == pytest.approx(expected)
