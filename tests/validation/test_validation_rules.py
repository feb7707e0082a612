"""Reports, limits, gold loading, schemas and the command line, rule by rule."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import validation_fixtures as fx
from include.campaign.validation import GoldError, RunLimits, load_gold, validate_run
from include.campaign.validation.findings import shown
from include.campaign.validation.gold import missing_gold_files
from include.campaign.validation.schema import run_schema
from include.schemas import format_names

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ROOT / "tests" / "hostile"


def concepts_run(folder: Path, lines: list[str]) -> Path:
    return fx.write_zip(folder / "run.zip", {"submission.csv": ("ID,CUIs\n" + "\n".join(lines) + "\n").encode()})


# ---- reports -------------------------------------------------------------------------------


def test_every_broken_rule_is_counted_in_full_with_ten_examples(tmp_path, gold_for):
    lines = [f"{i},C0040405" for i in fx.CONCEPT_IDS] + [f"unknown_{n:02d},C0040405" for n in range(25)]
    outcome = validate_run("caption-concepts-csv", concepts_run(tmp_path, lines), gold_for("caption-concepts-csv"))
    (finding,) = outcome.report["rules_broken"]
    assert finding["rule"] == "ID.known" and finding["count"] == 25
    assert [e["line"] for e in finding["examples"]] == list(range(7, 17))
    assert outcome.report["counts"]["ids_unknown"] == 25 and outcome.report["counts"]["problems"] == 25
    assert "   ... and 15 more" in outcome.text


def test_several_rules_are_reported_together(tmp_path, gold_for):
    lines = [f"{fx.CONCEPT_IDS[0]},C0040405;C0040405", f"{fx.CONCEPT_IDS[1]},X1", f"{fx.CONCEPT_IDS[1]},C0024485"]
    outcome = validate_run("caption-concepts-csv", concepts_run(tmp_path, lines), gold_for("caption-concepts-csv"))
    rules = {f["rule"]: f for f in outcome.report["rules_broken"]}
    assert set(rules) == {"CUIs.repeated-item", "CUIs.item-pattern", "ID.unique", "ID.missing"}
    assert rules["ID.unique"]["count"] == 2 and [e["line"] for e in rules["ID.unique"]["examples"]] == [3, 4]
    assert rules["ID.missing"]["count"] == 3
    assert outcome.run is None and outcome.report["verdict"] == "invalid"


def test_report_is_json_and_names_file_line_rule_and_expectation(tmp_path, gold_for):
    run = tmp_path / "labels.csv"
    run.write_text(fx.gans_detection_csv().replace(",1\n", ",yes\n", 1))
    outcome = validate_run("gans-detection-csv", run, gold_for("gans-detection-csv"))
    report = json.loads(json.dumps(outcome.report))
    assert set(report) >= {"format", "task", "run_file", "verdict", "summary", "counts", "rules_broken", "warnings", "limits"}
    (finding,) = report["rules_broken"]
    assert finding == {"rule": "label.allowed", "description": "label (label) is one of 0, 1", "count": 1,
                       "examples": [{"file": "labels.csv", "line": 2, "message": 'label "yes" is not one of 0, 1',
                                     "value": "yes"}]}
    assert "labels.csv line 2: label \"yes\" is not one of 0, 1" in outcome.text


def test_valid_report_is_short_and_gives_rows_and_coverage(tmp_path, gold_for):
    outcome = validate_run("caption-concepts-csv", fx.write_valid_run("caption-concepts-csv", tmp_path),
                           gold_for("caption-concepts-csv"))
    assert outcome.report["summary"] == "The run is valid: 5 rows read; 5 of 5 test image ids covered."
    assert len(outcome.text.splitlines()) == 4


def test_validation_is_a_pure_function_of_its_inputs(tmp_path, gold_for):
    run = HOSTILE / "concepts-duplicate-id.zip"
    first = validate_run("caption-concepts-csv", run, gold_for("caption-concepts-csv"))
    second = validate_run("caption-concepts-csv", run, gold_for("caption-concepts-csv"))
    assert first.report == second.report and first.text == second.text


@pytest.mark.parametrize("value, expected", [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"), ("+1+1", "'+1+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("plain", "plain"), ("tab\there", "tab\\there"), ("x" * 100, "x" * 80 + "…"),
])
def test_values_are_escaped_wherever_shown(value, expected):
    assert shown(value) == expected


# ---- limits --------------------------------------------------------------------------------


def test_limits_have_sensible_defaults_and_refuse_nonsense():
    limits = RunLimits()
    assert (limits.max_bytes, limits.max_uncompressed_bytes) == (512 * 1024**2, 2 * 1024**3)
    assert (limits.max_compression_ratio, limits.max_members) == (200, 100_000)
    with pytest.raises(ValueError, match="max_members"):
        RunLimits(max_members=0)
    with pytest.raises((AttributeError, ValueError)):  # frozen (pydantic refuses with a ValidationError)
        limits.max_bytes = 1


def test_member_count_limit(tmp_path, gold_for):
    run = fx.write_zip(tmp_path / "run.zip", fx.prompt_images())
    outcome = validate_run("vqa-gi-images-zip", run, gold_for("vqa-gi-images-zip"), RunLimits(max_members=5))
    assert "the zip holds 20 entries, over the limit of 5" in outcome.text


def test_size_limit_comes_from_the_limits(tmp_path, gold_for):
    run = fx.write_valid_run("topicto-json", tmp_path)
    outcome = validate_run("topicto-json", run, gold_for("topicto-json"), RunLimits(max_bytes=20))
    assert f"the run file is {run.stat().st_size} bytes, over the size limit of 20 bytes" in outcome.text


def test_total_uncompressed_size_limit(tmp_path, gold_for):
    run = fx.write_zip(tmp_path / "run.zip", fx.prompt_images())
    limits = RunLimits(max_uncompressed_bytes=1000)
    outcome = validate_run("vqa-gi-images-zip", run, gold_for("vqa-gi-images-zip"), limits)
    assert "over the uncompressed size limit of 1000 bytes" in outcome.text


def test_a_nul_byte_after_the_start_is_reported_with_its_offset(tmp_path, gold_for):
    text = fx.concepts_csv() + "".join(f"# padding line {n}\n" for n in range(400))
    offset = len(text.encode()) - 5
    data = text.encode()[:offset] + b"\0" + text.encode()[offset + 1:]
    run = fx.write_zip(tmp_path / "run.zip", {"submission.csv": data})
    outcome = validate_run("caption-concepts-csv", run, gold_for("caption-concepts-csv"))
    assert f"NUL byte at byte offset {offset}" in outcome.text


def test_nothing_is_extracted_from_an_archive(tmp_path, gold_for, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = fx.write_zip(tmp_path / "run.zip", fx.masks())
    before = sorted(tmp_path.rglob("*"))
    assert validate_run("magic-masks-zip", run, gold_for("magic-masks-zip")).valid
    assert sorted(tmp_path.rglob("*")) == before


# ---- gold ----------------------------------------------------------------------------------


@pytest.mark.parametrize("format_name", sorted(fx.GOLD_WRITERS))
def test_gold_tables_follow_the_contract(format_name, gold_for):
    gold = load_gold(format_name, gold_for(format_name))
    schema = run_schema(format_name)
    assert list(gold) == [spec.key for spec in schema.gold.files]
    for spec in schema.gold.files:
        assert list(gold[spec.key].columns) == spec.columns


def test_gold_types(gold_for):
    concepts = load_gold("caption-concepts-csv", gold_for("caption-concepts-csv"))
    assert concepts["concepts"]["CUIs"].tolist() == list(fx.CONCEPTS.values())
    assert load_gold("gans-detection-csv", gold_for("gans-detection-csv"))["labels"]["label"].dtype == np.int64
    assert load_gold("vqa-gi-answers-json", gold_for("vqa-gi-answers-json"))["answers"]["index"].tolist() == ["1", "2", "3"]
    masks = load_gold("magic-masks-zip", gold_for("magic-masks-zip"))["masks"]
    assert len(masks) == 6 and set(masks["annotator"]) == {"ann0", "ann1", "ann2"} and masks["mask"][0].dtype == bool
    touche = load_gold("touche-results-jsonl", gold_for("touche-results-jsonl"))
    assert touche["judgments"]["value"].dtype == np.int64 and touche["images"]["image_id"].tolist() == fx.COLLECTION
    closed = load_gold("magic-closed-vqa-json", gold_for("magic-closed-vqa-json"))["closed_vqa"]
    assert len(closed) == 6 and closed["option"].tolist() == [0, 2, 4, 1, 3, 5]
    real = load_gold("vqa-gi-images-zip", gold_for("vqa-gi-images-zip"))["real_images"]
    assert real["image"].tolist() == ["real000.png", "real001.png", "real002.png"]
    mapping = load_gold("vqa-gi-images-zip", gold_for("vqa-gi-images-zip"))["real_mapping"]
    assert mapping["prompt"].dtype == np.int64 and mapping["image"].tolist()[:3] == ["real000", "real001", "real002"]


def test_real_images_of_the_synthesis_gold_are_checked(tmp_path):
    gold = fx.write_gold("vqa-gi-images-zip", tmp_path / "gold")
    (gold / "real" / "notes.txt").write_text("not an image")
    with pytest.raises(GoldError, match=r"notes\.txt is not named as real/ requires"):
        load_gold("vqa-gi-images-zip", gold)
    (gold / "real" / "notes.txt").unlink()
    (gold / "real" / "fake.png").write_text("not a png")
    with pytest.raises(GoldError, match=r"fake\.png is not a PNG or JPEG image"):
        load_gold("vqa-gi-images-zip", gold)
    (gold / "real" / "fake.png").unlink()
    assert missing_gold_files("vqa-gi-images-zip", ["prompts.csv"], ["synthesis_fidelity"]) == [
        ("real", "stage real: a folder of files (needed by synthesis_fidelity)"),
        ("real_mapping.json", "stage real_mapping.json: json-mapping with prompt, image (needed by synthesis_fidelity)")]
    assert missing_gold_files("vqa-gi-images-zip", ["prompts.csv"], ["synthesis_agreement"]) == []


def test_callers_cannot_change_the_cached_gold(gold_for):
    first = load_gold("gans-detection-csv", gold_for("gans-detection-csv"))
    first["labels"].loc[0, "label"] = 99
    first["labels"]["extra"] = 1
    again = load_gold("gans-detection-csv", gold_for("gans-detection-csv"))["labels"]
    assert again["label"].iloc[0] == 0 and "extra" not in again


def test_a_changed_gold_file_is_read_again(tmp_path):
    folder = fx.write_gold("gans-detection-csv", tmp_path / "gold")
    assert len(load_gold("gans-detection-csv", folder)["labels"]) == 6
    (folder / "labels.csv").write_text("id,label\nonly_one,1\n")
    assert load_gold("gans-detection-csv", folder)["labels"]["id"].tolist() == ["only_one"]


def test_broken_gold_raises_gold_error_naming_the_file(tmp_path):
    folder = fx.write_gold("caption-concepts-csv", tmp_path / "gold")
    (folder / "concepts.csv").rename(tmp_path / "concepts.csv")
    with pytest.raises(GoldError, match=r"concepts\.csv is missing"):
        validate_run("caption-concepts-csv", HOSTILE / "concepts-empty.zip", folder)
    (tmp_path / "concepts.csv").rename(folder / "concepts.csv")
    (folder / "concepts_manual.csv").write_text("image,concepts\nx,C1\n")
    with pytest.raises(GoldError, match=r"concepts_manual\.csv has no column ID, CUIs"):
        load_gold("caption-concepts-csv", folder)
    labels = fx.write_gold("gans-detection-csv", tmp_path / "labels")
    (labels / "labels.csv").write_text("id,label\na,1\nb,maybe\n")
    with pytest.raises(GoldError, match=r"labels\.csv line 3: column label must be an integer"):
        load_gold("gans-detection-csv", labels)
    answers = fx.write_gold("vqa-gi-answers-json", tmp_path / "answers")
    (answers / "answers.json").write_text('[{"index": 1,\n "answer": }]')
    with pytest.raises(GoldError, match=r"answers\.json line 2: invalid JSON"):
        load_gold("vqa-gi-answers-json", answers)
    with pytest.raises(GoldError, match="does not exist"):
        load_gold("topicto-json", tmp_path / "nowhere")


def test_unknown_format_is_a_programming_error():
    with pytest.raises(KeyError, match="unknown run format 'nope'"):
        validate_run("nope", HOSTILE / "concepts-empty.zip", ROOT)


# ---- schemas -------------------------------------------------------------------------------


def contract_rows() -> dict[str, list[str]]:
    rows = {}
    for line in (ROOT / "docs" / "format-contract.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.match(r"`([a-z0-9-]+)`", cells[0]) if len(cells) == 4 else None
        if match and match.group(1) in format_names():
            rows[match.group(1)] = cells
    return rows


@pytest.mark.parametrize("format_name", format_names())
def test_schema_matches_the_format_contract(format_name):
    schema = run_schema(format_name)
    _, run_columns, gold_files, gold_keys = contract_rows()[format_name]
    for column in schema.canonical_columns:
        assert f"`{column}`" in run_columns, column
    for spec in schema.gold.files:
        assert (spec.file or spec.folder) in gold_files, spec.path_name
        assert f"`{spec.key}`" in gold_keys, spec.key
    assert schema.format == format_name and schema.task in contract_rows()[format_name][0]


# ---- command line --------------------------------------------------------------------------


def test_usage_errors_exit_2(tmp_path, gold_for, validate_cli):
    run = fx.write_valid_run("topicto-json", tmp_path)
    gold = gold_for("topicto-json")
    code, _, err = validate_cli("--format", "nope", "--run", run, "--gold", gold)
    assert code == 2 and "unknown run format 'nope'" in err
    code, _, err = validate_cli("--task", "nope", "--run", run, "--gold", gold)
    assert code == 2 and "no task 'nope'" in err
    code, _, err = validate_cli("--format", "topicto-json", "--run", tmp_path / "missing.json", "--gold", gold)
    assert code == 2 and "not found" in err
    code, _, err = validate_cli("--format", "topicto-json", "--run", run, "--gold", tmp_path / "no-gold")
    assert code == 2 and "gold folder" in err
    code, _, err = validate_cli("--run", run, "--gold", gold)
    assert code == 2 and "one of the arguments --task --format is required" in err
    broken = fx.write_gold("topicto-json", tmp_path / "broken")
    (broken / "references.json").write_text("{")
    code, _, err = validate_cli("--format", "topicto-json", "--run", run, "--gold", broken)
    assert code == 2 and "references.json" in err


def test_json_output(tmp_path, gold_for, validate_cli):
    run = fx.write_valid_run("gans-attribution-csv", tmp_path)
    code, out, _ = validate_cli("--task", "gans-attribution", "--run", run, "--gold", gold_for("gans-attribution-csv"), "--json")
    assert code == 0 and json.loads(out)["verdict"] == "valid"


def test_the_real_command_line(tmp_path, gold_for):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "include.cli", "validate", "--task", "caption-concept-detection"]
    done = subprocess.run(command + ["--run", HOSTILE / "concepts-dotdot.zip", "--gold", gold_for("caption-concepts-csv")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 1 and "has an unsafe path" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []
    usage = subprocess.run(command + ["--run", "missing.zip", "--gold", tmp_path], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=120)
    assert usage.returncode == 2 and "missing.zip not found" in usage.stderr
