"""Formats follow the campaign's task: the gold files required depend on the task's metrics."""
from __future__ import annotations

import io
import zipfile

import pytest

from include.campaign.config import load_campaign
from include.campaign.scoring import ScoringError, evaluate


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
