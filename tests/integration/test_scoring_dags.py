"""Scoring and results through the real DAGs: asset-triggered scoring, a re-score by hand, publication.

A three-task copy of ImageCLEF 2025 is replayed with the demo data (valid, invalid, tied, late and
over-limit runs): collection updates the ``runs/<task>`` assets, the scheduler's own code creates the
asset-triggered scoring run, and the results DAG waits for the organizer's approval, which the test
gives as the UI would. Then an organizer fixes a gold label and re-scores one team by hand.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import pytest
import yaml

from include.campaign.evaluation import DEFAULT_MAX_INSTANCES

pytestmark = pytest.mark.airflow
ROOT = Path(__file__).resolve().parents[2]
TASKS = ("caption-concept-detection", "gans-detection", "multimodal-reasoning")
CAMPAIGN = "imageclef2025"


@pytest.fixture(scope="module")
def world(s3_endpoint, smtp, airflow_home, tmp_path_factory):
    from devtools.campaign_replay import Simulation
    from include.campaign.context import CampaignContext
    from include.campaign.mail import SmtpSettings
    from include.campaign.store import ObjectStore, S3Settings

    recorder, port = smtp
    recorder.clear()
    saved = {k: os.environ.get(k) for k in ("CLEF_BUCKET", "CLEF_RETRY_DELAY_SECONDS", "CLEF_CAMPAIGNS_DIR")}
    os.environ.update({"CLEF_BUCKET": "clef-scoring-replay", "CLEF_RETRY_DELAY_SECONDS": "1"})
    raw = yaml.safe_load((ROOT / "include" / "campaigns" / "imageclef2025.yaml").read_text())
    raw["tasks"] = [t for t in raw["tasks"] if t["id"] in TASKS]
    workdir = tmp_path_factory.mktemp("scoring-replay")
    source = workdir / "three-tasks.yaml"
    source.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    store = ObjectStore(S3Settings(bucket="clef-scoring-replay", endpoint_url=s3_endpoint, access_key_id="k", secret_access_key="s"))
    smtp_settings = SmtpSettings(host="127.0.0.1", port=port, timeout=5)
    simulation = Simulation(source, workdir, lambda campaign: CampaignContext(campaign, store, smtp_settings), step=2.0, say=lambda line: None)
    try:
        report = simulation.run()
        yield {"simulation": simulation, "report": report, "store": store, "recorder": recorder}
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def test_every_dag_run_of_the_replay_succeeded(world):
    assert [(r.dag_id, r.failed_tasks()) for r in world["report"].failed] == []


def test_scoring_was_triggered_by_the_collection_assets(world):
    scoring_runs = [r for r in world["report"].runs if r.dag_id == f"{CAMPAIGN}_scoring"]
    assert len(scoring_runs) == 1 and scoring_runs[0].run_id.startswith("asset_triggered__")
    mapped = [name for name in scoring_runs[0].task_states if name.startswith("score_run[")]
    collected = sum(len(world["report"].manifests[t]["collected"]) for t in TASKS)
    # one instance per run up to the instance limit, then batches of consecutive runs (docs/scoring-batches.md)
    per_instance = math.ceil(collected / DEFAULT_MAX_INSTANCES)
    assert collected > 0 and len(mapped) == math.ceil(collected / per_instance) <= DEFAULT_MAX_INSTANCES


def test_invalid_runs_are_reported_not_ranked_and_ties_share_a_rank(world):
    store, boards = world["store"], world["report"].leaderboards
    for task in TASKS:
        rows = boards[task]["rows"]
        invalid = [r for r in rows if r["status"] == "invalid"]
        assert invalid and all(r["rank"] is None for r in invalid), task
        report = store.get_json(f"{CAMPAIGN}/evaluations/{task}/v0001/runs/{invalid[0]['team']}/{invalid[0]['run']}/report.json")
        assert report["verdict"] == "invalid"
        ranks = [r["rank"] for r in rows if r["status"] == "ranked"]
        assert ranks == sorted(ranks) and ranks[0] == 1
    tied = [task for task in TASKS if len([r["rank"] for r in boards[task]["rows"] if r["status"] == "ranked"]) > len({r["rank"] for r in boards[task]["rows"] if r["status"] == "ranked"})]
    assert tied, "the demo data has a tie in every task"


def test_late_runs_are_not_scored(world):
    for task in TASKS:
        manifest = world["report"].manifests[task]
        late = {(e["team"], e["run"]) for e in manifest["late"]}
        scored = {(r["team"], r["run"]) for r in world["report"].leaderboards[task]["rows"]}
        collected = {(e["team"], e["run"]) for e in manifest["collected"]}
        assert late and scored == collected
        for team, run in late - collected:
            assert (team, run) not in scored


def test_leaderboard_exports_agree_with_each_other(world):
    store = world["store"]
    for task in TASKS:
        prefix = f"{CAMPAIGN}/leaderboards/{task}/v0001/"
        board = json.loads(store.get_bytes(prefix + "leaderboard.json"))
        rows = list(csv.DictReader(io.StringIO(store.get_bytes(prefix + "leaderboard.csv").decode())))
        html = store.get_bytes(prefix + "leaderboard.html").decode()
        latex = store.get_bytes(prefix + "leaderboard.tex").decode()
        assert [(r["team"], r["run"]) for r in rows] == [(r["team"], r["run"]) for r in board["rows"]]
        for row, record in zip(rows, board["rows"]):
            assert row["rank"] == ("" if record["rank"] is None else str(record["rank"]))
            for metric, value in record["metrics"].items():
                if value is not None:
                    assert float(row[metric]) == pytest.approx(value, abs=1e-12)
        for record in board["rows"]:
            assert record["team"] in html and record["team"].replace("_", r"\_") in latex


def test_each_team_received_its_results_once_and_no_other_teams_runs(world):
    recorder, report = world["recorder"], world["report"]
    ids = report.team_ids
    for task in TASKS:
        board = report.leaderboards[task]
        teams = {r["team"] for r in board["rows"]}
        for team in teams:
            messages = [m for m in recorder.messages if "your results" in m.subject and task in m.body and team in m.body]
            assert len(messages) == 1, (task, team)
            others = teams - {team}
            assert not any(other in messages[0].body for other in others if other not in team), (task, team)
    assert set(ids.values()) >= {r["team"] for t in TASKS for r in report.leaderboards[t]["rows"]}


def test_rescoring_one_team_by_hand_with_a_fixed_gold_file(world):
    simulation, store, recorder = world["simulation"], world["store"], world["recorder"]
    task = "gans-detection"
    board = world["report"].leaderboards[task]
    team = next(r["team"] for r in board["rows"] if r["status"] == "ranked" and r["rank"] > 1)
    v1_before = [(v.key, v.version_id, v.etag) for v in store.list_versions(f"{CAMPAIGN}/evaluations/{task}/v0001/")]
    gold_key = f"{CAMPAIGN}/gold/{task}/test/labels.csv"
    lines = store.get_bytes(gold_key).decode().splitlines()
    first_id, first_label = lines[1].split(",")
    lines[1] = f"{first_id},{1 - int(first_label)}"
    store.put_bytes(gold_key, ("\n".join(lines) + "\n").encode())
    mails_before = len(recorder.messages)

    result = simulation.driver.run(f"{CAMPAIGN}_scoring", conf={"task": task, "teams": [team], "runs": [], "reason": "gold label of one image fixed"})
    assert result.ok, result.failed_tasks()
    assert [(v.key, v.version_id, v.etag) for v in store.list_versions(f"{CAMPAIGN}/evaluations/{task}/v0001/")] == v1_before
    diff = store.get_json(f"{CAMPAIGN}/evaluations/{task}/v0002/diff.json")
    changed = {(c["team"], c["run"]) for c in diff["changed"]}
    team_valid_runs = {(r["team"], r["run"]) for r in board["rows"] if r["team"] == team and r["status"] != "invalid"}
    assert changed == team_valid_runs
    lineage = store.get_json(f"{CAMPAIGN}/evaluations/{task}/v0002/lineage.json")
    assert lineage["reason"] == "gold label of one image fixed" and lineage["triggered_by"]
    # results were published: only the re-scored team hears about it, once
    new = recorder.messages[mails_before:]
    assert {r for m in new for r in m.recipients} == {_contact(store, team)}
    assert all("changed" in m.subject for m in new)


def test_a_second_results_run_sends_nothing(world):
    simulation, recorder = world["simulation"], world["recorder"]
    mails_before = len(recorder.messages)
    moment = simulation.campaign.milestone_time("results_release").astimezone()
    result = simulation.driver.run_with_approval(f"{CAMPAIGN}_results", moment)
    assert result.ok, result.failed_tasks()
    assert len(recorder.messages) == mails_before


def test_a_run_whose_scoring_task_dies_is_named_and_its_team_told_why(world):
    """A worker that cannot read the run: ``score_run`` fails (after its retries), the version still
    completes, the run is listed as not scored with the reason, the approval names it, its team hears."""
    from include.campaign import results
    from include.campaign.evaluation import FAILED_TASK_REASON

    simulation, store, recorder = world["simulation"], world["store"], world["recorder"]
    task = "multimodal-reasoning"
    board = world["report"].leaderboards[task]
    team = next(r["team"] for r in board["rows"] if r["status"] == "ranked")
    runs = sorted(e["run"] for e in world["report"].manifests[task]["collected"] if e["team"] == team)
    manifest = store.get_json(f"{CAMPAIGN}/collected/{task}/manifest.json")
    for entry in manifest["collected"]:
        if entry["team"] == team:
            store.delete(entry["key"])  # the scoring task of each of these runs dies reading it
    mails_before = len(recorder.messages)

    result = simulation.driver.run(f"{CAMPAIGN}_scoring", conf={"task": task, "teams": [team], "runs": [], "reason": "checking a dead worker"})
    assert result.task_states["build_leaderboard"] == "success"
    failed = result.failed_tasks()
    assert len(failed) == len(runs) and all(name.startswith("score_run[") for name in failed), failed
    version = store.get_json(f"{CAMPAIGN}/leaderboards/{task}/published.json")["version"]
    evaluation = store.get_json(f"{CAMPAIGN}/evaluations/{task}/{version}/evaluation.json")
    assert sorted(m["run"] for m in evaluation["missing"] if m["team"] == team) == runs
    assert all(m["reason"] == FAILED_TASK_REASON for m in evaluation["missing"] if m["team"] == team)
    summary = results.summary(simulation.ctx, task)
    assert "NOT SCORED" in summary and all(f"{team} / {run}" in summary for run in runs)
    # results were published: the team is told at once that its runs are no longer scored, and why
    new = [m for m in recorder.messages[mails_before:] if _contact(store, team) in m.recipients]
    assert len(new) == 1 and "not scored, because its scoring stopped before it produced a score" in new[0].body


def _contact(store, team_id: str) -> str:
    return store.get_json(f"{CAMPAIGN}/registrations/teams/{team_id}.json")["contact_email"]
