"""Formats follow the campaign's task: the gold files required depend on the task's metrics."""
from __future__ import annotations

import io
import zipfile

import pytest

from include.campaign.config import load_campaign
from include.campaign.evaluation import ScoringError, evaluate


def concepts_run(folder, lines: list[str]):
    path = folder / "run.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("submission.csv", "\n".join(lines) + "\n")
    path.write_bytes(buffer.getvalue())
    return path


def test_manual_concepts_are_needed_only_by_the_metric_that_reads_them(campaign_file, tmp_path):
    gold = tmp_path / "gold"
    gold.mkdir()
    (gold / "concepts.csv").write_text("ID,CUIs\nimg1,C0000001;C0000002\nimg2,C0000003\n")
    run = concepts_run(tmp_path, ["img1,C0000001", "img2,C0000003"])
    task = load_campaign(campaign_file).task("bird-tags")

    evaluation = evaluate(task, run, gold)
    assert evaluation.verdict == "valid" and list(evaluation.results) == ["concept_f1"]

    with_manual = task.model_copy(update={"metrics": ("concept_f1", "concept_f1_manual")})
    with pytest.raises(ScoringError, match=r"lacks stage concepts_manual.csv: csv with ID, CUIs \(needed by concept_f1_manual\)"):
        evaluate(with_manual, run, gold)


BIRD_OPTIONS = """    format_options:
      concept_pattern: 'B[0-9]{7}'
      concept_hint: a BirdVision species code, B followed by 7 digits (e.g. B0000123)
      concept_label: species code
"""


def with_options(campaign_file, tmp_path, options: str = BIRD_OPTIONS):
    text = campaign_file.read_text().replace("    metrics: [concept_f1]\n", "    metrics: [concept_f1]\n" + options, 1)
    path = tmp_path / "options.yaml"
    path.write_text(text)
    return path


def test_the_concept_pattern_and_wording_follow_the_task_and_reports_name_the_campaigns_task(campaign_file, tmp_path):
    task = load_campaign(with_options(campaign_file, tmp_path)).task("bird-tags")
    gold = tmp_path / "gold"
    gold.mkdir()
    (gold / "concepts.csv").write_text("ID,CUIs\nimg1,B0000001;B0000002\nimg2,B0000003\n")

    good = evaluate(task, concepts_run(tmp_path, ["img1,B0000001", "img2,B0000003"]), gold)
    assert good.verdict == "valid", good.text
    assert good.report["task"] == "bird-tags" and "Task: bird-tags (run format caption-concepts-csv)" in good.text

    (tmp_path / "bad").mkdir()
    bad = evaluate(task, concepts_run(tmp_path / "bad", ["img1,C0000001", "img2,B0000003"]), gold)
    assert bad.verdict == "invalid"
    assert "BirdVision species code, B followed by 7 digits" in bad.text and "species code" in bad.text
    assert "UMLS" not in bad.text and "caption-concept-detection" not in bad.text


def test_imagecLEF_settings_are_the_defaults(campaign_file, tmp_path):
    task = load_campaign(campaign_file).task("bird-tags")
    gold = tmp_path / "gold"
    gold.mkdir()
    (gold / "concepts.csv").write_text("ID,CUIs\nimg1,C0000001\nimg2,C0000003\n")
    bad = evaluate(task, concepts_run(tmp_path, ["img1,B0000001", "img2,C0000003"]), gold)
    assert bad.verdict == "invalid" and "a UMLS CUI, C followed by 7 digits" in bad.text
    assert bad.report["task"] == "bird-tags"


def test_the_validate_command_uses_the_tasks_settings(campaign_file, tmp_path, capsys):
    from include.cli import main

    config = with_options(campaign_file, tmp_path)
    gold = tmp_path / "gold"
    gold.mkdir()
    (gold / "concepts.csv").write_text("ID,CUIs\nimg1,B0000001\n")
    run = concepts_run(tmp_path, ["img1,B0000001"])
    assert main(["validate", "--config", str(config), "--task", "bird-tags", "--run", str(run), "--gold", str(gold)]) == 0
    assert "Task: bird-tags" in capsys.readouterr().out


def test_unknown_or_broken_format_options_are_campaign_file_errors(campaign_file, tmp_path):
    from include.campaign.config import ConfigError

    config = with_options(campaign_file, tmp_path, "    format_options:\n      concept_pattern: 'B[0-9'\n      colour: blue\n")
    with pytest.raises(ConfigError) as caught:
        load_campaign(config)
    text = caught.value.render()
    assert "tasks[0].format_options.concept_pattern" in text and "is not a regular expression" in text
    assert "tasks[0].format_options.colour" in text and "has no option 'colour' (its options: concept_hint, concept_label, concept_pattern)" in text
