"""``validate --inputs``: a participant checks a test run with only what was released to them (issue 19, item 6).

The public inputs stand in for the gold as the upload receipt's check does (one module owns them:
``include/campaign/submission_check.py``): the BirdVision tasks through the command, and every
ImageCLEF 2025 demo run, whose verdict with the released inputs must be the one the real gold gives.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from include.campaign.config import load_campaign
from include.campaign.submission_check import InputsError, input_columns, released_inputs
from include.campaign.validation import validate_run
from include.campaign.validation.gold import gold_entry
from include.campaign.validation.schema import run_schema
from tests.organizers.conftest import BIRDVISION

PROJECT_ROOT = Path(__file__).resolve().parents[2]
IMAGECLEF = PROJECT_ROOT / "include" / "campaigns" / "imageclef2025.yaml"
OPTIONS = "    format_options:\n      concept_pattern: 'B[0-9]{7}'\n      concept_hint: a BirdVision species code\n"
QUESTIONS = [{"id": "q1", "language": "de", "question": "Welcher Vogel?", "options": ["A", "B", "C"]},
             {"id": "q2", "language": "de", "question": "Wie viele?", "options": ["A", "B"]},
             {"id": "q3", "language": "fr", "question": "Quel oiseau ?", "options": ["A", "B", "C", "D"]}]


def validate(tmp_path: Path, task: str, run: bytes, inputs: Path, name: str = "run.zip") -> subprocess.CompletedProcess:
    config = tmp_path / "birdvision2026.yaml"
    config.write_text(BIRDVISION.replace("    metrics: [concept_f1]\n", "    metrics: [concept_f1]\n" + OPTIONS, 1))
    run_path = tmp_path / name
    run_path.write_bytes(run)
    command = [sys.executable, "-m", "include.cli", "validate", "--config", str(config), "--task", task, "--run", str(run_path), "--inputs", str(inputs)]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)


def concept_run(lines: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("submission.csv", lines)
    return buffer.getvalue()


@pytest.fixture
def image_list(tmp_path) -> Path:
    path = tmp_path / "test-images.txt"
    path.write_text("b1\nb2\nb3\nb4\n")
    return path


def test_a_test_run_checked_with_the_released_image_list_is_valid(tmp_path, image_list):
    result = validate(tmp_path, "bird-tags", concept_run("b1,B0000001\nb2,B0000003;B0000002\nb3,B0000001\nb4,B0000004\n"), image_list)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Task: bird-tags" in result.stdout and "VALID" in result.stdout and "4 of 4 test image ids covered" in result.stdout


def test_wrong_ids_and_missing_items_are_named_with_file_line_and_rule(tmp_path, image_list):
    result = validate(tmp_path, "bird-tags", concept_run("b1,B0000001\nb2,B0000003\nb9,B0000001\n"), image_list)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[ID.known]" in result.stdout and 'submission.csv line 3: unknown image id "b9"' in result.stdout
    assert "[ID.missing]" in result.stdout and 'image id "b4" is missing' in result.stdout


def test_the_task_s_own_concept_pattern_applies(tmp_path, image_list):
    result = validate(tmp_path, "bird-tags", concept_run("b1,B0000001\nb2,C0000003\nb3,B0000001\nb4,B0000004\n"), image_list)
    assert result.returncode == 1
    assert "submission.csv line 2" in result.stdout and "BirdVision species code" in result.stdout


def test_the_released_questions_check_languages_and_one_language_runs(tmp_path):
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps(QUESTIONS))
    german = json.dumps([{"id": "q1", "answer_key": "A", "language": "de"}, {"id": "q2", "answer_key": "B", "language": "de"}]).encode()
    assert validate(tmp_path, "bird-quiz", german, questions, "run.json").returncode == 0
    wrong = json.dumps([{"id": "q1", "answer_key": "A", "language": "de"}, {"id": "q2", "answer_key": "B", "language": "de"},
                        {"id": "q3", "answer_key": "C", "language": "de"}]).encode()
    result = validate(tmp_path, "bird-quiz", wrong, questions, "run.json")
    assert result.returncode == 1, result.stdout
    assert 'run.json line 1: question id "q3" is language "fr"' in result.stdout and "[language.matches-test-set]" in result.stdout, result.stdout


def test_inputs_that_cannot_stand_in_for_the_gold_are_a_usage_error_saying_why(tmp_path):
    no_language = tmp_path / "questions.csv"
    no_language.write_text("id,question\nq1,Welcher Vogel?\n")
    result = validate(tmp_path, "bird-quiz", b"[]", no_language, "run.json")
    assert result.returncode == 2
    assert "questions.csv: no column language" in result.stderr and "the test items need id, language" in result.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    result = validate(tmp_path, "bird-tags", concept_run("b1,B0000001\n"), empty)
    assert result.returncode == 2 and "lists no test items" in result.stderr


@pytest.fixture(scope="module")
def imageclef():
    from devtools.demo import build_demo

    campaign = load_campaign(IMAGECLEF)
    return campaign, build_demo(campaign, seed=2025)


def release(run_format: str, gold: Path, folder: Path) -> Path:
    """What participants receive: the public input files, or the list of test items with its input columns."""
    schema = run_schema(run_format)
    public = [spec for spec in schema.gold.files if spec.public]
    folder.mkdir()
    for spec in public:
        (folder / spec.path_name).write_bytes((gold / spec.path_name).read_bytes())
    if public:
        return folder
    key = schema.ids.expected_from.key
    table = gold_entry(run_format, gold).tables[key][sorted(input_columns(schema)[key])]
    table.to_csv(folder / "test-items.csv", index=False)
    return folder / "test-items.csv"


@pytest.mark.parametrize("task_id", [task.id for task in load_campaign(IMAGECLEF).tasks])
def test_every_imageclef_demo_run_gets_the_verdict_of_the_real_gold(task_id, imageclef, tmp_path):
    from devtools.demo import write_tree

    campaign, data = imageclef
    run_format = campaign.task(task_id).run_format
    gold = write_tree(data.gold[task_id], tmp_path / "gold")
    inputs = release(run_format, gold, tmp_path / "released")
    if run_format in ("magic-masks-zip", "gans-attribution-csv"):
        with pytest.raises(InputsError, match="validate with --gold"):
            released_inputs(run_format, inputs)
        return
    entry = released_inputs(run_format, inputs)
    for number, run in enumerate(data.runs[task_id]):
        path = tmp_path / f"run-{number}"
        path.write_bytes(run.data)
        expected = validate_run(run_format, path, gold).report["verdict"]
        assert validate_run(run_format, path, entry).report["verdict"] == expected, f"{task_id} {run.team}/{run.run_name} ({run.role})"
