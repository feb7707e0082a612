"""Valid runs are accepted (exit 0) and come back as the contract's canonical DataFrame; the
tolerated variations (BOM, CRLF, folders and archiver litter in zips, subsets where allowed) too."""
from __future__ import annotations

import codecs
import json

import numpy as np
import pytest

import validation_fixtures as fx
from include.campaign.config import load_campaign
from include.campaign.validation import validate_run
from include.schemas import format_names

CAMPAIGN = load_campaign("include/campaigns/imageclef2025.yaml")
CANONICAL = {  # docs/format-contract.md, run DataFrame columns
    "caption-concepts-csv": ["ID", "CUIs"],
    "caption-text-csv": ["ID", "Caption"],
    "gans-detection-csv": ["id", "label"],
    "gans-attribution-csv": ["id", "subset"],
    "vqa-gi-answers-json": ["index", "img_id", "question", "answer"],
    "vqa-gi-images-zip": ["member", "prompt_id", "image_index", "width", "height"],
    "magic-masks-zip": ["item_id", "system", "mask"],
    "magic-closed-vqa-json": ["encounter_id", "qid", "family", "option"],
    "touche-results-jsonl": ["argument_id", "method", "image_id", "rank", "tag"],
    "topicto-json": ["id", "hyp"],
    "multimodal-reasoning-json": ["id", "answer_key", "language"],
}


def test_every_run_format_has_a_schema_and_a_campaign_task():
    assert set(format_names()) == set(CANONICAL)
    assert {task.run_format for task in CAMPAIGN.tasks} == set(CANONICAL)
    assert len(CAMPAIGN.tasks) == 11


@pytest.mark.parametrize("task", CAMPAIGN.tasks, ids=lambda task: task.id)
def test_a_valid_run_of_each_task_gets_exit_0(task, tmp_path, gold_for, validate_cli):
    run = fx.write_valid_run(task.run_format, tmp_path)
    code, out, err = validate_cli("--task", task.id, "--run", run, "--gold", gold_for(task.run_format))
    assert code == 0, out + err
    assert "Verdict: VALID" in out and "The run is valid" in out


@pytest.mark.parametrize("format_name", sorted(CANONICAL))
def test_valid_run_becomes_the_canonical_dataframe(format_name, tmp_path, gold_for):
    outcome = validate_run(format_name, fx.write_valid_run(format_name, tmp_path), gold_for(format_name))
    assert outcome.valid, outcome.text
    assert list(outcome.run.columns) == CANONICAL[format_name]
    assert outcome.report["counts"]["rules_broken"] == 0 and outcome.report["rules_broken"] == []
    json.dumps(outcome.report)
    for column in CANONICAL[format_name]:
        if column in ("ID", "id", "index", "prompt_id", "item_id", "encounter_id", "argument_id"):
            assert all(isinstance(value, str) for value in outcome.run[column]), column


def test_canonical_types(tmp_path, gold_for):
    def run_of(format_name):
        folder = tmp_path / format_name
        return validate_run(format_name, fx.write_valid_run(format_name, folder), gold_for(format_name)).run

    concepts = run_of("caption-concepts-csv")
    assert concepts["CUIs"].tolist() == list(fx.CONCEPTS.values())
    assert run_of("gans-detection-csv")["label"].dtype == np.int64
    images = run_of("vqa-gi-images-zip")
    assert images[["image_index", "width", "height"]].dtypes.tolist() == [np.int64] * 3
    assert len(images) == 20 and images["prompt_id"].nunique() == 2
    masks = run_of("magic-masks-zip")
    first = masks.set_index("item_id")["mask"]["IMG_ENC00001_00001"]
    assert first.dtype == bool and first.shape == fx.MASK_ITEMS["IMG_ENC00001_00001"] and first.sum() == 6
    closed = run_of("magic-closed-vqa-json")
    assert closed["option"].dtype == np.int64 and set(closed["family"]) == {"CQID010", "CQID011"}
    assert run_of("vqa-gi-answers-json")["index"].tolist() == ["1", "2", "3"]
    assert run_of("touche-results-jsonl")["rank"].tolist() == [1, 2, 3, 4, 5] * 2


def test_bom_and_crlf_are_accepted(tmp_path, gold_for):
    concepts = codecs.BOM_UTF8 + fx.concepts_csv().replace("\n", "\r\n").encode()
    run = fx.write_zip(tmp_path / "run.zip", {"submission.csv": concepts})
    outcome = validate_run("caption-concepts-csv", run, gold_for("caption-concepts-csv"))
    assert outcome.valid, outcome.text
    assert outcome.run["ID"].tolist() == fx.CONCEPT_IDS
    labels = tmp_path / "labels.csv"
    labels.write_bytes(codecs.BOM_UTF8 + fx.gans_detection_csv().replace("\n", "\r\n").encode())
    assert validate_run("gans-detection-csv", labels, gold_for("gans-detection-csv")).valid
    answers = tmp_path / "answers.json"
    answers.write_bytes(codecs.BOM_UTF8 + json.dumps(fx.vqa_answers(), indent=1).replace("\n", "\r\n").encode())
    assert validate_run("vqa-gi-answers-json", answers, gold_for("vqa-gi-answers-json")).valid
    results = tmp_path / "results.jsonl"
    results.write_bytes(fx.jsonl(fx.touche_lines()).replace("\n", "\r\n").encode())
    assert validate_run("touche-results-jsonl", results, gold_for("touche-results-jsonl")).valid


def test_formula_text_is_kept_as_text(tmp_path, gold_for):
    formula = '=HYPERLINK("http://example.org","click")'
    text = fx.captions_csv().splitlines()
    text[1] = f'{fx.CONCEPT_IDS[0]},"{formula.replace(chr(34), chr(34) * 2)}"'
    run = fx.write_zip(tmp_path / "run.zip", {"submission.csv": ("\n".join(text) + "\n").encode()})
    outcome = validate_run("caption-text-csv", run, gold_for("caption-text-csv"))
    assert outcome.valid, outcome.text
    assert outcome.run["Caption"].iloc[0] == formula


def test_multi_line_quoted_caption_keeps_line_numbers(tmp_path, gold_for):
    lines = fx.captions_csv().splitlines()
    lines[1] = f'{fx.CONCEPT_IDS[0]},"first line\nsecond line"'
    lines[3] = f"{fx.CONCEPT_IDS[2]},a, caption with a stray comma"
    run = fx.write_zip(tmp_path / "run.zip", {"submission.csv": ("\n".join(lines) + "\n").encode()})
    outcome = validate_run("caption-text-csv", run, gold_for("caption-text-csv"))
    assert not outcome.valid
    (finding,) = outcome.report["rules_broken"]
    assert finding["rule"] == "csv.field-count" and finding["examples"][0]["line"] == 5


def test_zip_folders_and_archiver_litter_are_tolerated(tmp_path, gold_for):
    run = fx.write_zip(tmp_path / "run.zip", {"team-run-1/submission.csv": fx.concepts_csv().encode(),
                                               "__MACOSX/team-run-1/._submission.csv": b"\0\5\26\7",
                                               ".DS_Store": b"\0\0\0\1Bud1"})
    assert validate_run("caption-concepts-csv", run, gold_for("caption-concepts-csv")).valid
    images = fx.write_zip(tmp_path / "images.zip", {f"generated/{name}": data for name, data in fx.prompt_images().items()})
    assert validate_run("vqa-gi-images-zip", images, gold_for("vqa-gi-images-zip")).valid


def test_bare_file_formats_may_be_zipped(tmp_path, gold_for):
    labels = fx.write_zip(tmp_path / "labels.zip", {"labels.csv": fx.gans_detection_csv().encode()})
    assert validate_run("gans-detection-csv", labels, gold_for("gans-detection-csv")).valid
    answers = fx.write_zip(tmp_path / "answers.zip", {"run.json": json.dumps(fx.reasoning()).encode()})
    assert validate_run("multimodal-reasoning-json", answers, gold_for("multimodal-reasoning-json")).valid


def test_concepts_are_compared_upper_cased_kept_as_written_and_stripped(tmp_path, gold_for):
    lines = fx.concepts_csv().splitlines()
    lines[1] = f"{fx.CONCEPT_IDS[0]}, c0040405 ; C0817096"
    run = fx.write_zip(tmp_path / "run.zip", {"submission.csv": ("\n".join(lines) + "\n").encode()})
    outcome = validate_run("caption-concepts-csv", run, gold_for("caption-concepts-csv"))
    assert outcome.valid, outcome.text
    assert outcome.run["CUIs"].iloc[0] == ["c0040405", "C0817096"]


def test_one_language_of_multimodal_reasoning_is_a_valid_run(tmp_path, gold_for):
    run = tmp_path / "run.json"
    run.write_text(json.dumps(fx.reasoning("bulgarian")))
    outcome = validate_run("multimodal-reasoning-json", run, gold_for("multimodal-reasoning-json"))
    assert outcome.valid, outcome.text
    assert outcome.report["counts"]["subset"] == {"language": "bulgarian"}
    assert outcome.report["counts"]["ids_covered"] == outcome.report["counts"]["ids_expected"] == 2


def test_topicto_may_leave_ids_out(tmp_path, gold_for):
    outcome = validate_run("topicto-json", fx.write_valid_run("topicto-json", tmp_path), gold_for("topicto-json"))
    assert outcome.valid
    assert outcome.report["counts"]["ids_missing"] == 1


def test_generated_touche_images_need_not_be_in_the_collection(tmp_path, gold_for):
    lines = [{**line, "image_id": f"generated-{n}"} for n, line in enumerate(fx.touche_lines("generation"))]
    run = tmp_path / "results.jsonl"
    run.write_text(fx.jsonl(lines))
    assert validate_run("touche-results-jsonl", run, gold_for("touche-results-jsonl")).valid


def test_unknown_json_fields_are_warnings_not_errors(tmp_path, gold_for):
    records = [{**record, "confidence": 0.9} for record in fx.reasoning()]
    run = tmp_path / "run.json"
    run.write_text(json.dumps(records))
    outcome = validate_run("multimodal-reasoning-json", run, gold_for("multimodal-reasoning-json"))
    assert outcome.valid
    assert outcome.report["warnings"][0]["rule"] == "json.unknown-field"
    assert 'field "confidence" is not part of this format' in outcome.text
