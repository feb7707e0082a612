"""The campaign file model: the ImageCLEF 2025 file loads, and every kind of mistake is named precisely."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from include.campaign.config import ConfigError, load_campaign, parse_campaign
from include.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
IMAGECLEF = ROOT / "include" / "campaigns" / "imageclef2025.yaml"
TASK_IDS = [
    "caption-concept-detection", "caption-prediction", "gans-detection", "gans-attribution", "vqa-gi-answering",
    "vqa-gi-synthesis", "magic-segmentation", "magic-closed-vqa", "argument-image-retrieval", "topicto", "multimodal-reasoning",
]


def _variant(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    text = IMAGECLEF.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "campaign.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_campaign(path)
    return caught.value.render()


def test_imageclef2025_loads_with_every_task():
    campaign = load_campaign(IMAGECLEF)
    assert campaign.task_ids == TASK_IDS
    assert campaign.milestone_time("registration_opens").date() == dt.date(2024, 12, 20)
    assert campaign.task("argument-image-retrieval").runs_allowed == 5
    assert campaign.task("topicto").primary_metric == "picto_er"


def test_dates_are_days_in_the_campaign_zone():
    campaign = load_campaign(IMAGECLEF)
    deadline = campaign.milestone_time("run_deadline")
    release = campaign.milestone_time("test_data_release")
    assert (deadline.hour, deadline.minute, deadline.second) == (23, 59, 59)
    assert (release.hour, release.minute, release.second) == (0, 0, 0)
    assert deadline.utcoffset() == dt.timedelta(0)


def test_the_calls_literal_opening_date_is_refused_naming_both_milestones(tmp_path):
    path = _variant(tmp_path, ("registration_opens: 2024-12-20", "registration_opens: 2025-12-20"))
    text = _problems(path)
    first = text.splitlines()[1]
    assert "registration_opens" in first and "registration_closes" in first
    assert "2025-12-20" in first and "2025-04-25" in first
    assert f"{path}:" in first and "schedule.registration_closes" in first


def test_task_override_out_of_order_names_the_task_path(tmp_path):
    path = _variant(tmp_path, ("    runs_allowed: 5\n", "    runs_allowed: 5\n    schedule:\n      run_deadline: 2025-03-01\n"))
    text = _problems(path)
    assert "tasks[8].schedule.run_deadline" in text
    assert "test_data_release: 2025-03-14" in text and "run_deadline: 2025-03-01" in text


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        (("timezone: UTC", "timezone: Mars/Olympus"), "timezone: unknown time zone 'Mars/Olympus'"),
        (("  - id: gans-attribution", "  - id: gans-detection"), "tasks[3].id: duplicate task id 'gans-detection'"),
        (("run_format: topicto-json", "run_format: topicto-xml"), "tasks[9].run_format: unknown run format 'topicto-xml'"),
        (("metrics: [mmr_accuracy]", "metrics: [mmr_accuracy, mmr_brilliance]"), "tasks[10].metrics[1]: unknown metric 'mmr_brilliance'"),
        (("metrics: [mmr_accuracy]", "metrics: [picto_er]"), "tasks[10].metrics[0]: metric 'picto_er' does not apply to run format"),
        (("email: ivan.eggel@hevs.ch", "email: ivan.eggel(at)hevs.ch"), "organizers[3].email: malformed e-mail address 'ivan.eggel(at)hevs.ch'"),
        (("    runs_allowed: 5\n", "\n"), "tasks[8].runs_allowed: this field is required"),
        (("  camera_ready: 2025-07-07\n", ""), "schedule.camera_ready: this field is required"),
        (("    runs_allowed: 5\n", "    runs_alowed: 5\n"), "tasks[8].runs_alowed: unknown field"),
        (("run_deadline: 2025-05-10", "run_deadline: 10.05.2025"), "schedule.run_deadline: expected a date"),
    ],
)
def test_each_mistake_is_named_with_its_path(tmp_path, replacement, expected):
    text = _problems(_variant(tmp_path, replacement))
    assert expected in text
    assert "Traceback" not in text


def test_errors_carry_the_line_number(tmp_path):
    path = _variant(tmp_path, ("timezone: UTC", "timezone: Nowhere/Land"))
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1) if l.startswith("timezone:"))
    assert f"{path}:{line}: timezone" in _problems(path)


def test_broken_yaml_and_wrong_shapes_are_explained():
    with pytest.raises(ConfigError, match=r"<campaign>:3: .*not valid YAML"):
        parse_campaign("id: x\nname: [\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_campaign("- just\n- a list\n")
    with pytest.raises(ConfigError, match="file not found"):
        load_campaign("/nonexistent/campaign.yaml")


def test_check_command_exit_codes(tmp_path, capsys):
    assert cli(["check", str(IMAGECLEF)]) == 0
    out = capsys.readouterr().out
    assert "ImageCLEF 2025 (imageclef2025): OK" in out and all(task in out for task in TASK_IDS)
    bad = _variant(tmp_path, ("registration_opens: 2024-12-20", "registration_opens: 2025-12-20"))
    assert cli(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "registration_closes" in err and "Traceback" not in err


def test_calendar_lists_every_task_in_order_in_both_zones(capsys):
    assert cli(["calendar", str(IMAGECLEF)]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    for task in TASK_IDS:
        assert sum(task in line for line in lines) == 11, task
    stamps = [line.split(" | ")[1] for line in lines]
    assert stamps == sorted(stamps)
    assert lines[0].startswith("2024-12-20 00:00:00 UTC | 2024-12-20 00:00:00 UTC | registration opens")


def test_calendar_shows_local_time_and_utc_for_another_zone(tmp_path, capsys):
    path = _variant(tmp_path, ("timezone: UTC", "timezone: Europe/Madrid"))
    assert cli(["calendar", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2025-05-10 23:59:59 CEST | 2025-05-10 21:59:59 UTC | run submission deadline" in out


def test_cli_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "include.cli", "check", str(IMAGECLEF)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
