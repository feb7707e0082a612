"""Intervals and significance groups end to end over real S3 and SMTP: per-item files, every export, summary, e-mail.

Each figure shown is checked against ``include.campaign.significance`` called directly on the
per-item files the scoring stored.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import random

import pandas as pd
import pytest

from include.campaign import leaderboard, results, evaluation as scoring
from include.campaign import significance as st
from include.metrics.registry import METRICS
from scoring_fixtures import collect, gans_gold, gans_run, read_html, register, score_task, stage_gold

TASK = "gans-detection"
ITEMS = 300


def labels_with_accuracy(gold: dict[str, int], accuracy: float, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    return {i: (v if rng.random() < accuracy else 1 - v) for i, v in gold.items()}


@pytest.fixture
def gold():
    rng = random.Random(3)
    return {str(i): rng.randint(0, 1) for i in range(1, ITEMS + 1)}


@pytest.fixture
def scored(mail_ctx, gold):
    runs = {("team-a", "a-strong"): gans_run(labels_with_accuracy(gold, 0.95, 1)),
            ("team-b", "b-close"): gans_run(labels_with_accuracy(gold, 0.94, 2)),
            ("team-c", "c-weak"): gans_run(labels_with_accuracy(gold, 0.70, 3)),
            ("team-c", "c-broken"): gans_run({"1": "yes"})}
    stage_gold(mail_ctx, TASK, gans_gold(gold))
    collect(mail_ctx, TASK, runs)
    for team in ("team-a", "team-b", "team-c"):
        register(mail_ctx, team, f"{team}@example.org")
    score_task(mail_ctx, TASK)
    return mail_ctx


def stored_item_data(ctx, team: str, run: str):
    key = scoring.run_prefix(ctx, TASK, "v0001", team, run) + "per_item.csv"
    table = pd.read_csv(io.BytesIO(ctx.store.get_bytes(key)), index_col="item", dtype={"item": str})
    return table, st.item_data(table, "gans_kappa", "kappa").to_numpy()


def test_per_item_file_holds_components_and_the_lineage_covers_it(scored):
    table, data = stored_item_data(scored, "team-a", "a-strong")
    assert {"gans_accuracy", "gans_kappa:g0p0", "gans_kappa:g1p1", "gans_f1:g0p1"} <= set(table.columns) and len(table) == ITEMS
    evaluation = scoring.read_evaluation(scored, TASK, "v0001")
    value = next(r for r in evaluation["runs"] if r["run"] == "a-strong")["metrics"]["gans_kappa"]
    assert st.value_of(data, "kappa") == pytest.approx(value, abs=1e-12)
    lineage = scored.store.get_json(scored.layout.evaluations(TASK, "v0001") + scoring.LINEAGE_FILE)
    key = scoring.run_prefix(scored, TASK, "v0001", "team-a", "a-strong") + "per_item.csv"
    entry = next(r for r in lineage["runs"] if r["run"] == "a-strong")
    assert entry["per_item_sha256"] == hashlib.sha256(scored.store.get_bytes(key)).hexdigest()
    assert lineage["statistics"]["settings"]["seed"] == st.DEFAULT_SEED == evaluation["statistics"]["settings"]["seed"]


def test_every_export_shows_the_intervals_and_groups_the_functions_give(scored):
    prefix = scored.layout.leaderboards(TASK, "v0001")
    board = scored.store.get_json(prefix + "leaderboard.json")
    ranked = [row for row in board["rows"] if row["status"] == "ranked"]
    assert [row["run"] for row in ranked] == ["a-strong", "b-close", "c-weak"]
    direct = st.significance_groups([stored_item_data(scored, row["team"], row["run"])[1] for row in ranked], "kappa")
    for row, expected in zip(ranked, direct.runs):
        assert row["interval"] == pytest.approx(list(expected.interval), abs=1e-12)
        assert row["group"] == expected.group and row["p_vs_best"] == expected.p_vs_best
    assert [row["group"] for row in ranked] == ["a", "a", "b"] and ranked[2]["differs_from_best"] is True
    settings = board["statistics"]["settings"]
    assert settings["resamples"] == st.DEFAULT_RESAMPLES and settings["items"] == ITEMS and settings["correction"] == "holm"
    assert next(r for r in board["rows"] if r["run"] == "c-broken")["interval"] is None

    csv_rows = {row["run"]: row for row in csv.DictReader(scored.store.get_bytes(prefix + "leaderboard.csv").decode().splitlines())}
    for row in ranked:
        assert float(csv_rows[row["run"]]["ci_low"]) == row["interval"][0] and csv_rows[row["run"]]["group"] == row["group"]
    assert csv_rows["c-broken"]["ci_low"] == "" and csv_rows["c-broken"]["group"] == ""

    page = scored.store.get_bytes(prefix + "leaderboard.html").decode()
    html = read_html(page).tables["ranked"]
    assert html[0][-2:] == ["95 % CI (gans_kappa)", "Group"]
    for cells, row in zip(html[1:], ranked):
        assert cells[-2:] == [st.interval_text(row["interval"]), row["group"]]
    assert page.count("<svg") == 1 and "Holm" in page

    latex = scored.store.get_bytes(prefix + "leaderboard.tex").decode()
    line = next(line for line in latex.splitlines() if line.startswith("1 & team-a"))
    assert line.endswith(f"& {st.interval_text(ranked[0]['interval'])} & a \\\\") and "leaderboard-figure.pdf" in latex
    assert scored.store.get_bytes(prefix + leaderboard.FIGURE_PDF).startswith(b"%PDF")


def test_the_summary_and_each_teams_mail_give_intervals_and_the_difference_from_the_best(scored, mailbox):
    board = scoring.read_leaderboard(scored, TASK, "v0001")
    rows = {row["run"]: row for row in board["rows"]}
    text = results.summary(scored, TASK)
    assert f"95 % CI {st.interval_text(rows['a-strong']['interval'])}, group a" in text
    assert "2 of 3 ranked runs are not significantly different from the best one (group a)" in text
    assert f"seed {st.DEFAULT_SEED}" in text
    results.publish(scored, TASK, approved_by="olga")
    body = mailbox.to("team-c@example.org")[0].body
    assert f"95 % confidence interval of gans_kappa: {st.interval_text(rows['c-weak']['interval'])}" in body
    assert "significance group b: significantly different from the best run" in body
    assert "a-strong" not in body and "b-close" not in body
    assert "significance group a: this is the best run" in mailbox.to("team-a@example.org")[0].body
    assert "significance group a: not significantly different from the best run" in mailbox.to("team-b@example.org")[0].body
    public = scored.store.list_keys(scored.layout.public_leaderboards(TASK))
    assert any(key.endswith("leaderboard-figure.pdf") for key in public)


def test_a_board_says_why_it_has_no_intervals():
    specs = [METRICS["vqa_bleu"], METRICS["vqa_meteor"]]
    runs = [{"team": t, "run": "r", "verdict": "valid", "metrics": {"vqa_bleu": v, "vqa_meteor": v}} for t, v in (("a", 0.5), ("b", 0.4))]
    board = leaderboard.add_statistics(leaderboard.build("vqa", runs, specs), {}, specs)
    assert "no item components" in board.statistics["note"] and not board.has_intervals
    assert "no item components" in board.to_html() and board.to_csv().splitlines()[1].endswith(",,,,")

    specs = [METRICS["vqa_meteor"]]
    table = pd.DataFrame({"vqa_meteor": [0.2, 0.4]}, index=["q1", "q2"])
    board = leaderboard.build("vqa", [{"team": "a", "run": "r", "verdict": "valid", "metrics": {"vqa_meteor": 0.9}}], specs)
    leaderboard.add_statistics(board, {("a", "r"): table}, specs)
    assert "is not the mean of its per-item scores" in board.statistics["note"]


def test_figures_are_reproducible_and_draw_every_ranked_run():
    specs = [METRICS["vqa_meteor"]]
    runs = [{"team": f"t{i}", "run": "r", "verdict": "valid", "metrics": {"vqa_meteor": 0.1 * i}} for i in range(1, 5)]
    tables = {(f"t{i}", "r"): pd.DataFrame({"vqa_meteor": [0.1 * i - 0.05, 0.1 * i + 0.05] * 20},
                                           index=[f"q{k}" for k in range(40)]) for i in range(1, 5)}
    board = leaderboard.add_statistics(leaderboard.build("vqa", runs, specs), tables, specs, resamples=500)
    svg, pdf = board.figure("svg"), board.figure("pdf")
    assert svg == board.figure("svg") and pdf == board.figure("pdf")
    assert svg.count(b"<path") > 4 and pdf.startswith(b"%PDF")
    assert json.loads(board.to_json())["statistics"]["settings"]["resamples"] == 500


def test_participant_names_never_reach_the_page_as_markup_through_the_figure():
    specs = [METRICS["vqa_meteor"]]
    name = "x --><script>alert(1)</script>"
    runs = [{"team": name, "run": name, "verdict": "valid", "metrics": {"vqa_meteor": 0.5}},
            {"team": "b", "run": "r", "verdict": "valid", "metrics": {"vqa_meteor": 0.25}}]
    tables = {(name, name): pd.DataFrame({"vqa_meteor": [0.4, 0.6]}, index=["q1", "q2"]),
              ("b", "r"): pd.DataFrame({"vqa_meteor": [0.2, 0.3]}, index=["q1", "q2"])}
    page = leaderboard.add_statistics(leaderboard.build("vqa", runs, specs), tables, specs, resamples=100).to_html()
    assert page.count("<svg") == 1 and "<script>alert" not in page and "<!--" not in page.split("<svg", 1)[1].split("</svg>")[0]


def test_one_run_gets_its_interval_and_runs_on_disjoint_items_get_a_note_not_a_failure():
    specs = [METRICS["vqa_meteor"]]
    one = leaderboard.build("v", [{"team": "a", "run": "r", "verdict": "valid", "metrics": {"vqa_meteor": 0.5}}], specs)
    leaderboard.add_statistics(one, {("a", "r"): pd.DataFrame({"vqa_meteor": [0.4, 0.6]}, index=["1", "2"])}, specs, resamples=100)
    assert one.ranked[0].interval == (0.4, 0.6) and one.ranked[0].group == "a" and one.ranked[0].p_vs_best is None
    runs = [{"team": t, "run": "r", "verdict": "valid", "metrics": {"vqa_meteor": 0.5}} for t in ("a", "b")]
    tables = {("a", "r"): pd.DataFrame({"vqa_meteor": [0.4, 0.6]}, index=["1", "2"]),
              ("b", "r"): pd.DataFrame({"vqa_meteor": [0.4, 0.6]}, index=["3", "4"])}
    disjoint = leaderboard.add_statistics(leaderboard.build("v", runs, specs), tables, specs, resamples=100)
    assert disjoint.statistics["note"] == "no intervals or groups: the runs share no scored item"
    assert not disjoint.has_intervals and disjoint.exports()["figure_pdf"].startswith(b"%PDF")
