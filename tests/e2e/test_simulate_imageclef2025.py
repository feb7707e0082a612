"""End to end: ``python -m devtools.simulate include/campaigns/imageclef2025.yaml`` with the demo data.

One real run of the command (its own moto S3, aiosmtpd and SQLite Airflow, every DAG through
``dag.test()``, a few minutes), then assertions on what it left: the JSON report of the final state
and the e-mails, one ``.eml`` file per message. The primary scores are recomputed here, directly
with the validation and metric functions, on the demo runs the collection should have kept.
"""
from __future__ import annotations

import email
import email.policy
import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from include.campaign.config import load_campaign
from include.campaign.teams import normalise_team_name, team_slug
from devtools.demo import AGREEMENT_NOT_APPROVED, INVALID, LATE, build_demo, write_tree

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "include" / "campaigns" / "imageclef2025.yaml"
# Every task's leaderboard (the JSON export's content) as the demo data and the scoring code gave it
# when it was recorded; a change to a number, a rank, an interval or a note shows up here.
RECORDED_LEADERBOARDS = Path(__file__).with_name("imageclef2025_leaderboards.json")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("simulate")
    report_path = workdir / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "devtools.simulate", str(CONFIG), "--workdir", str(workdir), "--report", str(report_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
        # No model directory, whatever the caller's shell has: the recorded leaderboards name the missing one.
        env={name: value for name, value in os.environ.items() if name != "CLEF_MODEL_DIR"},
    )
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    mails = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sorted((workdir / "mail").glob("*.eml"))]
    return {"result": result, "report": report, "mails": mails, "campaign": load_campaign(CONFIG), "demo": build_demo(load_campaign(CONFIG))}


def _withheld(campaign, report) -> set[str]:
    """The tasks whose primary metric no valid run has (no model directory here): results withhold them."""
    withheld = set()
    for task in campaign.tasks:
        rows = [r for r in report["leaderboards"][task.id]["rows"] if r["status"] != "invalid"]
        if rows and all(r["metrics"].get(task.primary_metric) is None for r in rows):
            withheld.add(task.id)
    return withheld


def test_without_a_model_directory_the_model_tasks_say_which_models_are_missing(simulated):
    campaign, stdout = simulated["campaign"], simulated["result"].stdout
    assert _withheld(campaign, simulated["report"]) == {"caption-prediction", "vqa-gi-synthesis"}
    assert "model directory: none" in stdout
    caption = stdout[stdout.index("\ncaption-prediction: "):]
    assert "caption_relevance was not computed" in caption.splitlines()[2]
    assert "model microsoft/deberta-xlarge-mnli not available" in caption.splitlines()[2]
    synthesis = stdout[stdout.index("\nvqa-gi-synthesis: "):]
    assert "ranked by nothing computable" in synthesis.splitlines()[1]
    assert "model ikim-uk-essen/BiomedCLIP_ViT_patch16_224 not available" in synthesis.splitlines()[2]


def _mails_to(simulated, address: str) -> list:
    return [m for m in simulated["mails"] if address.lower() in str(m["To"]).lower()]


def test_simulate_exits_0_and_prints_the_leaderboards(simulated):
    result = simulated["result"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "caption-concept-detection: ranked by concept_f1" in result.stdout
    assert "e-mails sent, by purpose:" in result.stdout
    assert all(run["state"] == "success" for run in simulated["report"]["dag_runs"])


def test_the_leaderboards_are_byte_for_byte_the_recorded_ones(simulated):
    """The JSON export of every task's leaderboard, byte for byte (``Leaderboard.to_json``'s form): a
    refactoring must not move a number. When a change of the numbers is intended (new demo data, a
    metric fix), record them again from the report: ``json.dumps(report["leaderboards"], indent=1,
    ensure_ascii=False)`` into tests/e2e/imageclef2025_leaderboards.json, and say why in the commit."""
    recorded = json.loads(RECORDED_LEADERBOARDS.read_text(encoding="utf-8"))
    boards = simulated["report"]["leaderboards"]
    assert sorted(boards) == sorted(recorded)
    export = lambda board: json.dumps(board, indent=2, ensure_ascii=False) + "\n"  # noqa: E731
    for task_id, board in recorded.items():
        assert export(boards[task_id]) == export(board), task_id


def test_every_task_has_a_leaderboard_whose_primary_scores_match_the_metric_functions(simulated, tmp_path):
    from include.campaign.validation import validate_run
    from include.metrics import score_run

    report, demo, campaign = simulated["report"], simulated["demo"], simulated["campaign"]
    for task in campaign.tasks:
        board = report["leaderboards"][task.id]
        rows = {(r["team"], r["run"]): r for r in board["rows"]}
        gold_dir = write_tree(demo.gold[task.id], tmp_path / task.id / "gold")
        kept = {}
        for run in demo.runs[task.id]:  # uploaded in order: the last on-time upload of a run name is what was collected
            if not run.late:
                kept[(team_slug(normalise_team_name(run.team)), run.run_name)] = run
        collected = {(e["team"], e["run"]) for e in report["manifests"][task.id]["collected"]}
        assert set(rows) == collected, task.id
        for key in collected:
            run = kept[key]
            path = tmp_path / task.id / f"{key[0]}-{key[1]}"
            path.write_bytes(run.data)
            outcome = validate_run(task.run_format, path, gold_dir)
            row = rows[key]
            if outcome.run is None:
                assert row["status"] == "invalid" and row["rank"] is None, (task.id, key)
                continue
            expected = score_run(task.run_format, [task.primary_metric], outcome.run, outcome.gold)[task.primary_metric]
            shown = row["metrics"][task.primary_metric]
            if expected.value is None:
                assert shown is None, (task.id, key)  # a model metric: "not computed", never 0
            else:
                assert math.isclose(shown, expected.value, rel_tol=0, abs_tol=1e-12), (task.id, key, shown, expected.value)


def test_invalid_and_late_runs_are_reported_and_not_ranked(simulated):
    report, demo = simulated["report"], simulated["demo"]
    for task_id, runs in demo.runs.items():
        board = report["leaderboards"][task_id]
        manifest = report["manifests"][task_id]
        invalid_rows = [r for r in board["rows"] if r["status"] == "invalid"]
        assert invalid_rows and all(r["rank"] is None for r in invalid_rows), task_id
        late_demo = {(team_slug(normalise_team_name(r.team)), r.run_name) for r in runs if r.late}
        assert {(e["team"], e["run"]) for e in manifest["late"]} == late_demo, task_id
        ranked = {(r["team"], r["run"]) for r in board["rows"] if r["status"] == "ranked"}
        on_time_names = {(team_slug(normalise_team_name(r.team)), r.run_name) for r in runs if not r.late}
        assert not (late_demo - on_time_names) & ranked, task_id
    over_limit = [(t, e) for t, m in report["manifests"].items() for e in m["dropped_over_limit"]]
    assert over_limit, "the demo's over-limit team lost its earliest run"


def test_each_team_received_the_expected_emails(simulated):
    demo, report, campaign = simulated["demo"], simulated["report"], simulated["campaign"]
    results_by_team = defaultdict(set)
    for task_id, board in report["leaderboards"].items():
        if task_id in _withheld(campaign, report):  # its primary metric's model is missing: not published, no results mail
            continue
        for row in board["rows"]:
            results_by_team[row["team"]].add(task_id)
    for registration in demo.registrations:
        address = registration.document.get("contact_email")
        if INVALID in registration.flags:
            assert address is None
            continue
        mails = _mails_to(simulated, address)
        subjects = [str(m["Subject"]) for m in mails]
        team_id = team_slug(normalise_team_name(registration.team_name))
        if LATE in registration.flags:
            assert subjects == [f"{campaign.name}: your registration could not be accepted"], subjects
            continue
        assert sum("confirmed" in s for s in subjects) == 1, (address, subjects)
        if AGREEMENT_NOT_APPROVED in registration.flags:
            assert not any("data of" in s or "upload links" in s for s in subjects), (address, subjects)
            continue
        for task_id in results_by_team.get(team_id, ()):
            title = campaign.task(task_id).title
            assert sum(s.endswith(f"your results in {title}") for s in subjects) == 1, (address, task_id, subjects)
        if team_id in results_by_team:
            assert sum("working notes" in s.lower() or "camera-ready" in s.lower() or "notification" in s.lower() for s in subjects) == 3, (address, subjects)
    assert report["mail_by_purpose"]["results"] == sum(len(tasks) for tasks in results_by_team.values())


def test_leaderboards_show_the_intervals_and_groups_the_statistics_functions_give(simulated, tmp_path):
    """Per task: per-item data recomputed here from the demo runs, then intervals and groups by the functions directly."""
    import io

    import pandas as pd

    from include.campaign import significance as st
    from include.campaign.evaluation import per_item_csv, task_metric_options
    from include.campaign.validation import validate_run
    from include.metrics import score_run
    from include.metrics.registry import METRICS

    report, demo, campaign = simulated["report"], simulated["demo"], simulated["campaign"]
    with_groups = 0
    for task in campaign.tasks:
        board = report["leaderboards"][task.id]
        ranked = [r for r in board["rows"] if r["status"] == "ranked"]
        metric = board["ranked_by"]
        if not ranked:
            assert board["statistics"]["note"] and all(r["interval"] is None for r in board["rows"]), task.id
            continue
        form = METRICS[metric].corpus_statistic or st.MEAN
        if form != st.MEAN and form not in st.CORPUS_RULES:
            assert "no item components" in board["statistics"]["note"] and all(r["interval"] is None for r in ranked), task.id
            continue
        gold_dir = write_tree(demo.gold[task.id], tmp_path / task.id / "gold")
        kept = {(team_slug(normalise_team_name(r.team)), r.run_name): r for r in demo.runs[task.id] if not r.late}
        usable, data = [], []
        for row in ranked:
            path = tmp_path / task.id / f"{row['team']}-{row['run']}"
            path.write_bytes(kept[(row["team"], row["run"])].data)
            outcome = validate_run(task.run_format, path, gold_dir)
            results = score_run(task.run_format, list(task.metrics), outcome.run, outcome.gold, task_metric_options(task))
            table = pd.read_csv(io.StringIO(per_item_csv(results)), index_col="item", dtype={"item": str})
            items = st.item_data(table, metric, form)
            if items is not None and not items.empty and st.check_value(items.to_numpy(dtype=float), form, row["metrics"][metric]) is None:
                usable.append(row)
                data.append(items)
            else:
                assert row["interval"] is None and row["group"] is None, (task.id, row["run"])
        if not usable:
            continue
        settings = board["statistics"]["settings"]
        aligned, _ = st.align(data)
        direct = st.significance_groups(aligned, form, METRICS[metric].higher_is_better, settings["resamples"], settings["seed"],
                                        settings["alpha"], settings["level"], settings["method"])
        for row, expected in zip(usable, direct.runs):
            assert row["interval"] == [expected.interval[0], expected.interval[1]], (task.id, row["run"])
            assert row["group"] == expected.group and row["p_vs_best"] == expected.p_vs_best, (task.id, row["run"])
        with_groups += 1
    assert with_groups >= 6, f"only {with_groups} tasks have intervals and groups"
