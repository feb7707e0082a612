"""Leaderboards: ranking rules, "n/c" for metrics not computed, escaping, and four exports that agree."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess

from include.campaign import leaderboard
from include.metrics.registry import METRICS
from scoring_fixtures import read_html, rows_from_csv, rows_from_html, rows_from_json, rows_from_latex

CONCEPTS = [METRICS["concept_f1"], METRICS["concept_f1_manual"]]
PICTO = [METRICS["picto_er"], METRICS["picto_sacrebleu"]]
CAPTIONS = [METRICS["caption_relevance"], METRICS["caption_rouge1"]]
SCRIPT_NAME = "<script>alert(1)</script>"


def run(team, name, primary, secondary=None, verdict="valid", metrics=CONCEPTS, reason=""):
    values = {metrics[0].name: primary, metrics[1].name: secondary}
    not_computed = {k: "not computed: model x not available" for k, v in values.items() if v is None}
    return {"team": team, "run": name, "verdict": verdict, "metrics": values if verdict == "valid" else {},
            "not_computed": not_computed if verdict == "valid" else {}, "reason": reason}


def sample_board():
    return leaderboard.build("caption-concept-detection", [
        run("team-a", "a1", 0.5, 0.1),
        run("team-b", SCRIPT_NAME, 0.7, 0.2),
        run("team-c", "c1", 0.5, 0.3),
        run("team-d", "d_1 & 50% {x} #1 $5 ~^\\", 0.4, None),
        run("team-e", "e1", None, 0.9),
        run("team-f", "f1", None, None, verdict="invalid", reason="invalid: 1 rule(s) broken (ID.missing)"),
    ], CONCEPTS, version="v0003")


def test_ties_share_a_rank_and_the_other_metrics_order_them():
    board = sample_board()
    assert [(r.rank, r.team) for r in board.ranked] == [(1, "team-b"), (2, "team-c"), (2, "team-a"), (4, "team-d")]
    assert board.team_ranks() == {"team-b": 1, "team-c": 2, "team-a": 2, "team-d": 4}


def test_lower_is_better_metrics_rank_the_smallest_first():
    board = leaderboard.build("topicto", [run("t1", "r", 30.0, 10.0, metrics=PICTO), run("t2", "r", 12.5, 5.0, metrics=PICTO),
                                          run("t3", "r", 12.5, 9.0, metrics=PICTO)], PICTO)
    assert [(r.rank, r.team) for r in board.ranked] == [(1, "t3"), (1, "t2"), (3, "t1")]


def test_a_team_ranks_by_its_best_run_among_teams():
    board = leaderboard.build("gans", [run("a", "1", 0.9, 0), run("a", "2", 0.8, 0), run("b", "1", 0.85, 0), run("c", "1", 0.85, 0)], CONCEPTS)
    assert [r.rank for r in board.ranked] == [1, 2, 2, 4]
    assert board.team_ranks() == {"a": 1, "b": 2, "c": 2}


def test_not_computed_is_never_zero_and_never_ranked_on():
    board = sample_board()
    assert [r.run for r in board.not_ranked] == ["e1"] and "model x not available" in board.not_ranked[0].note
    assert [r.run for r in board.invalid] == ["f1"]
    csv_text, data = board.to_csv(), json.loads(board.to_json())
    d_row = next(csv.DictReader(csv_text.splitlines()), None) and next(
        row for row in csv.DictReader(csv_text.splitlines()) if row["team"] == "team-d")
    assert d_row["concept_f1_manual"] == "n/c"
    assert next(r for r in data["rows"] if r["team"] == "team-d")["metrics"]["concept_f1_manual"] is None
    assert next(r for r in data["rows"] if r["team"] == "team-e")["rank"] is None
    assert "& n/c \\\\" in board.to_latex()
    html = read_html(board.to_html())
    assert html.tables["ranked"][4][-1] == "n/c" and html.tables["not-ranked"][1][2] == "n/c"
    assert "0.0000" not in board.to_html()


def test_with_the_primary_metric_not_computed_anywhere_the_ranking_is_provisional_and_says_so():
    board = leaderboard.build("caption-prediction", [run("a", "1", None, 0.4, metrics=CAPTIONS), run("b", "1", None, 0.6, metrics=CAPTIONS)], CAPTIONS)
    assert board.ranked_by == "caption_rouge1" and [r.team for r in board.ranked] == ["b", "a"]
    assert "caption_relevance was not computed" in board.note and "provisionally" in board.note
    for text in (board.to_csv(), board.to_html(), board.to_latex()):
        assert "n/c" in text
    assert "provisionally" in board.to_html() and "provisionally" in board.to_latex()
    assert json.loads(board.to_json())["ranked_by"] == "caption_rouge1"


def test_the_html_page_shows_a_script_run_name_as_text():
    board = leaderboard.build("t", [run("\"><img src=x onerror=alert(1)>", SCRIPT_NAME, 0.5, 0.5), run("b", "b1", 0.4, None)], CONCEPTS)
    page = board.to_html()
    reader = read_html(page)
    assert reader.tags.get("script") == 1  # only the page's own sorting script
    assert "img" not in reader.tags
    assert reader.tables["ranked"][1][1:3] == ["\"><img src=x onerror=alert(1)>", SCRIPT_NAME]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_latex_escapes_special_characters_and_uses_booktabs():
    tex = sample_board().to_latex()
    assert r"d\_1 \& 50\% \{x\} \#1 \$5 \textasciitilde{}\textasciicircum{}\textbackslash{}" in tex
    assert r"\textless{}script\textgreater{}" in tex
    assert all(command in tex for command in (r"\toprule", r"\midrule", r"\bottomrule"))
    assert r"\textbf{0.7000}" in tex and r"\textbf{0.3000}" in tex  # best value of each metric
    unescaped = tex.replace(r"\{", "").replace(r"\}", "")
    assert unescaped.count("{") == unescaped.count("}")
    assert "GANs \\& detection" in leaderboard.build(type("T", (), {"id": "g", "title": "GANs & detection"})(), [run("a", "1", 1, 1)], CONCEPTS).to_latex()


def test_csv_cells_a_spreadsheet_would_run_are_quoted_with_an_apostrophe():
    specs = [METRICS["concept_f1"], METRICS["gans_kappa"]]
    board = leaderboard.build("t", [run("=HYPERLINK(\"x\")", "@SUM(A1)", 0.5, -0.25, metrics=specs)], specs)
    line = board.to_csv().splitlines()[1]
    assert line.startswith("1,\"'=HYPERLINK(\"\"x\"\")\",'@SUM(A1),ranked,0.5,-0.25")


def test_the_four_exports_agree():
    board = sample_board()
    expected = rows_from_json(board.to_json())
    assert len(expected) == 5
    assert rows_from_csv(board.to_csv()) == expected
    assert rows_from_html(board.to_html()) == expected
    assert rows_from_latex(board.to_latex()) == expected


def test_a_duplicate_summary_of_a_run_counts_once_the_latest_wins():
    board = leaderboard.build("t", [run("a", "1", 0.1, 0.1), run("a", "1", 0.9, 0.1)], CONCEPTS)
    assert [(r.run, r.values["concept_f1"]) for r in board.rows] == [("1", 0.9)]


def test_clicking_a_header_sorts_the_table_numbers_by_value_and_nc_last():
    page = sample_board().to_html()
    script = page.split("<script>", 1)[1].split("</script>", 1)[0]
    reader = read_html(page)
    table = {"headers": reader.tables["ranked"][0],
             "rows": [[{"text": t, "value": v} for t, v in zip(texts, values)]
                      for texts, values in zip(reader.tables["ranked"][1:], reader.cell_values["ranked"][1:])]}
    assert shutil.which("node"), "node runs the page's sorting script in this test"
    order = subprocess.run(["node", "-e", NODE_DOM + script + NODE_CLICKS, json.dumps(table)], capture_output=True, text=True, timeout=30)
    assert order.returncode == 0, order.stderr
    by_manual_up, by_manual_down, by_team = json.loads(order.stdout)
    assert by_manual_up == ["team-a", "team-b", "team-c", "team-d"]  # 0.1, 0.2, 0.3, n/c
    assert by_manual_down == ["team-c", "team-b", "team-a", "team-d"]  # n/c stays last
    assert by_team == ["team-a", "team-b", "team-c", "team-d"]


# The smallest DOM the page's script touches: one table, its headers' buttons and its body rows.
NODE_DOM = """
const data = JSON.parse(process.argv[1]);
const clicks = [];
const headers = data.headers.map((text, i) => { const attrs = {}; return {
  textContent: text, setAttribute: (k, v) => { attrs[k] = v; }, getAttribute: (k) => (k in attrs ? attrs[k] : null),
  removeAttribute: (k) => { delete attrs[k]; }, querySelector: () => ({ addEventListener: (e, f) => { clicks[i] = f; } }) }; });
const body = { rows: data.rows.map((cells) => ({ cells: cells.map((c) => ({ textContent: c.text,
  getAttribute: (k) => (k === 'data-value' ? c.value : null) })) })),
  appendChild(row) { this.rows.splice(this.rows.indexOf(row), 1); this.rows.push(row); } };
const table = { querySelectorAll: () => headers, tBodies: [body] };
global.document = { querySelectorAll: () => [table] };
"""
NODE_CLICKS = """
const teams = () => body.rows.map((r) => r.cells[1].textContent);
clicks[4](); const up = teams(); clicks[4](); const down = teams(); clicks[1](); const team = teams();
console.log(JSON.stringify([up, down, team]));
"""
