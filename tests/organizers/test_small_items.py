"""The smaller items of issue 19: one-round check, calendar reminders once, and more."""
from __future__ import annotations

from include.cli import main


def test_check_reports_format_metric_mismatches_with_the_other_errors_in_one_round(campaign_file, tmp_path, capsys):
    text = campaign_file.read_text().replace("metrics: [mmr_accuracy]", "metrics: [concept_f1]").replace("lab: BirdVision, a made-up lab of bird photographs\n", "")
    config = tmp_path / "two-problems.yaml"
    config.write_text(text)
    assert main(["check", str(config)]) == 2
    err = capsys.readouterr().err
    assert ": lab: this field is required" in err
    assert "2 problems in the campaign file" in err
    assert "metric 'concept_f1' does not apply to run format 'multimodal-reasoning-json'" in err


def test_calendar_with_reminders_lists_the_notification_once(campaign_file, capsys):
    assert main(["calendar", str(campaign_file), "--reminders"]) == 0
    out = capsys.readouterr().out
    notification = [line for line in out.splitlines() if line.startswith("2026-06-20")]
    assert len(notification) == 1, out
    assert "CEST" in notification[0]
    assert sum(1 for line in out.splitlines() if "minus" in line or "reminder" in line.lower()) >= 3
