"""Partial runs: a multiple-choice run of one language does not tie with a full run, and coverage is shown."""
from __future__ import annotations

import json

from include.campaign import leaderboard
from include.campaign.config import load_campaign
from include.campaign.evaluation import evaluate, run_coverage
from include.metrics.registry import get_metric

QUESTIONS = [("q1", "de", "A"), ("q2", "de", "C"), ("q3", "fr", "B"), ("q4", "fr", "D"), ("q5", "fr", "A")]


def _quiz(tmp_path, campaign_file):
    gold = tmp_path / "gold"
    gold.mkdir()
    (gold / "answers.json").write_text(json.dumps([{"id": q, "answer_key": a, "language": lang} for q, lang, a in QUESTIONS]))
    return load_campaign(campaign_file).task("bird-quiz"), gold


def _run(tmp_path, name: str, rows) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps([{"id": q, "answer_key": a, "language": lang} for q, lang, a in rows]))
    return str(path)


def test_a_one_language_run_counts_missing_answers_as_wrong_and_shows_its_coverage(campaign_file, tmp_path):
    task, gold = _quiz(tmp_path, campaign_file)
    full = evaluate(task, _run(tmp_path, "full", QUESTIONS), gold)
    german = evaluate(task, _run(tmp_path, "german", QUESTIONS[:2]), gold)
    assert full.verdict == german.verdict == "valid", german.text
    assert full.results["mmr_accuracy"].value == 1.0
    assert german.results["mmr_accuracy"].value == 2 / 5  # 3 French questions unanswered: wrong
    assert german.results["mmr_accuracy"].breakdown == {"de": 1.0}
    assert run_coverage(german.report) == {"answered": 2, "total": 5}

    summaries = [{"team": team, "run": "run-01", "verdict": "valid", "metrics": {"mmr_accuracy": e.results["mmr_accuracy"].value},
                  "coverage": run_coverage(e.report)} for team, e in (("full-team", full), ("german-team", german))]
    board = leaderboard.build(task, summaries, [get_metric("mmr_accuracy")])
    records = {r["team"]: r for r in board.to_records()}
    assert records["full-team"]["rank"] == 1 and records["german-team"]["rank"] == 2
    assert records["german-team"]["coverage"] == "2/5" and records["full-team"]["coverage"] == "5/5"
    header, *lines = board.to_csv().splitlines()
    assert header.split(",")[-2:] == ["coverage", "note"]
    assert any(line.startswith("2,german-team,run-01") and ",2/5," in line for line in lines)


def _board_of(tmp_path, campaign_file):
    task, gold = _quiz(tmp_path, campaign_file)
    runs = {"full-team": QUESTIONS, "german-team": QUESTIONS[:2]}
    summaries = []
    for team, rows in runs.items():
        outcome = evaluate(task, _run(tmp_path, team, rows), gold)
        summaries.append({"team": team, "run": "run-01", "verdict": "valid", "metrics": {"mmr_accuracy": outcome.results["mmr_accuracy"].value},
                          "coverage": run_coverage(outcome.report)})
    summaries.append({"team": "broken-team", "run": "run-01", "verdict": "invalid", "metrics": {}, "reason": "not JSON"})
    return leaderboard.build(task, summaries, [get_metric("mmr_accuracy")])


def test_the_html_export_shows_each_run_s_coverage(campaign_file, tmp_path):
    page = _board_of(tmp_path, campaign_file).to_html()
    assert '<button type="button">Coverage</button>' in page
    assert '<td class="number coverage" data-value="0.4">2/5</td>' in page
    assert '<td class="number coverage" data-value="1.0">5/5</td>' in page
    assert "Coverage = test items the run answered" in page


def test_the_latex_export_shows_each_run_s_coverage(campaign_file, tmp_path):
    table = _board_of(tmp_path, campaign_file).to_latex()
    header = next(line for line in table.splitlines() if line.startswith("Rank & Team"))
    assert header.rstrip(" \\").endswith("& Coverage")
    assert "\\begin{tabular}{rllrr}" in table
    rows = [line for line in table.splitlines() if "team & run-01" in line]
    assert [row.rstrip(" \\").rsplit("& ", 1)[1] for row in rows] == ["5/5", "2/5"], rows


def test_boards_without_coverage_have_no_coverage_column(campaign_file, tmp_path):
    board = _board_of(tmp_path, campaign_file)
    for row in board.rows:
        row.coverage = ""
    assert "Coverage" not in board.to_html() and "Coverage" not in board.to_latex()
