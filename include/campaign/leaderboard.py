"""Leaderboards: rank the runs of one task and export the table as CSV, JSON, HTML and LaTeX.

Runs are ranked by the task's primary metric in the direction the metric registry gives; runs
with equal primary values share a rank (competition ranking: 1, 2, 2, 4) and are ordered among
themselves by the other metrics. A metric that was not computed (it needs a model that was not
available) shows as "n/c" in every export, never as 0, and is never ranked on: if the primary
metric was computed for no run at all, the first metric that was computed ranks the runs
provisionally and every export says so. Valid runs without the ranking value and invalid runs
are listed apart, unranked.

Team and run names are text from participants: every export escapes them for its own format
(HTML entities, LaTeX special characters, a leading ``'`` before spreadsheet formula characters
in CSV).
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from include.campaign.mail import TEMPLATE_DIR

NOT_COMPUTED = "n/c"
RANKED, NOT_RANKED, INVALID = "ranked", "not ranked", "invalid"
# Values that differ only beyond this many decimals are the same score (float noise).
TIE_DECIMALS = 12
DISPLAY_DECIMALS = 4
CSV_COLUMNS_BEFORE = ("rank", "team", "run", "status")
CSV_COLUMNS_AFTER = ("note",)


@dataclass(frozen=True)
class MetricColumn:
    name: str
    higher_is_better: bool
    description: str = ""

    @property
    def arrow(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


@dataclass
class Row:
    team: str
    run: str
    status: str  # ranked | not ranked | invalid
    values: dict[str, float | None]
    not_computed: dict[str, str] = field(default_factory=dict)
    rank: int | None = None
    note: str = ""

    def value_text(self, metric: str, decimals: int | None = DISPLAY_DECIMALS) -> str:
        """The value as shown: rounded for display, "n/c" when not computed, empty for invalid runs."""
        if self.status == INVALID:
            return ""
        value = self.values.get(metric)
        if value is None:
            return NOT_COMPUTED
        return repr(float(value)) if decimals is None else f"{value:.{decimals}f}"


@dataclass
class Leaderboard:
    task: str
    title: str
    columns: list[MetricColumn]
    ranked_by: str | None
    rows: list[Row]
    note: str = ""
    version: str | None = None

    # --- views ----------------------------------------------------------------------------------

    @property
    def ranked(self) -> list[Row]:
        return [row for row in self.rows if row.status == RANKED]

    @property
    def not_ranked(self) -> list[Row]:
        return [row for row in self.rows if row.status == NOT_RANKED]

    @property
    def invalid(self) -> list[Row]:
        return [row for row in self.rows if row.status == INVALID]

    @property
    def teams(self) -> list[str]:
        """Every team with at least one run in the evaluation, valid or not."""
        return sorted({row.team for row in self.rows})

    @property
    def ranking_column(self) -> MetricColumn | None:
        return next((c for c in self.columns if c.name == self.ranked_by), None)

    def team_ranks(self) -> dict[str, int]:
        """Each ranked team's place among teams, by its best run (teams tied on that value share it)."""
        best: dict[str, Row] = {}
        for row in self.ranked:  # already in rank order: the first row of a team is its best
            best.setdefault(row.team, row)
        ordered = sorted(best.values(), key=lambda row: row.rank or 0)
        keys = [_tie_key(row.values[self.ranked_by]) for row in ordered] if self.ranked_by else []
        return {row.team: rank for row, rank in zip(ordered, competition_ranks(keys))}

    def rows_of(self, team: str) -> list[Row]:
        return [row for row in self.rows if row.team == team]

    def best_values(self) -> dict[str, float]:
        """The best value of each metric over the ranked runs (for bold face in LaTeX)."""
        best: dict[str, float] = {}
        for column in self.columns:
            values = [row.values[column.name] for row in self.ranked if row.values.get(column.name) is not None]
            if values:
                best[column.name] = max(values) if column.higher_is_better else min(values)
        return best

    # --- exports --------------------------------------------------------------------------------

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-able dict per row, exact values (None when not computed or invalid)."""
        return [
            {
                "rank": row.rank,
                "team": row.team,
                "run": row.run,
                "status": row.status,
                "metrics": {c.name: (None if row.status == INVALID else row.values.get(c.name)) for c in self.columns},
                "not_computed": dict(row.not_computed),
                "note": row.note,
            }
            for row in self.rows
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "title": self.title,
            "version": self.version,
            "ranked_by": self.ranked_by,
            "note": self.note,
            "metrics": [{"name": c.name, "higher_is_better": c.higher_is_better, "description": c.description} for c in self.columns],
            "participating_teams": len(self.teams),
            "team_ranks": self.team_ranks(),
            "rows": self.to_records(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"

    def to_csv(self) -> str:
        """Exact values; "n/c" where a metric was not computed; invalid runs with empty metric cells."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([*CSV_COLUMNS_BEFORE, *(c.name for c in self.columns), *CSV_COLUMNS_AFTER])
        for row in self.rows:
            cells = ["" if row.rank is None else str(row.rank), spreadsheet_safe(row.team), spreadsheet_safe(row.run), row.status]
            cells += [row.value_text(c.name, decimals=None) for c in self.columns]
            writer.writerow(cells + [spreadsheet_safe(row.note)])
        return buffer.getvalue()

    def to_html(self) -> str:
        """A standalone page: escaped by the autoescaping template, sortable by clicking a header."""
        template = html_environment().get_template("leaderboard.html.j2")
        return template.render(board=self, NOT_COMPUTED=NOT_COMPUTED, team_ranks=self.team_ranks())

    def to_latex(self) -> str:
        """A ``booktabs`` table for the working-notes overview; every value is LaTeX-escaped."""
        best = self.best_values()
        body = [
            {
                "rank": "" if row.rank is None else str(row.rank),
                "team": row.team,
                "run": row.run,
                "cells": [
                    {"text": row.value_text(c.name), "best": row.status == RANKED and row.values.get(c.name) is not None
                     and _tie_key(row.values[c.name]) == _tie_key(best.get(c.name))}
                    for c in self.columns
                ],
            }
            for row in self.rows
            if row.status != INVALID
        ]
        return latex_environment().get_template("leaderboard.tex.j2").render(board=self, body=body, ranked_count=len(self.ranked))


# --- building ----------------------------------------------------------------------------------


def build(task: Any, summaries: Iterable[Mapping[str, Any]], metric_specs: Sequence[Any] | Mapping[str, Any],
          version: str | None = None) -> Leaderboard:
    """Rank the runs of one task.

    ``task`` is a task id or an object with ``id`` and ``title``; ``summaries`` are the per-run
    summaries of :func:`include.campaign.scoring.score_one` (team, run, verdict, metrics,
    not_computed); ``metric_specs`` are the registry specs of the task's metrics, primary first.
    """
    task_id, title = (task, task) if isinstance(task, str) else (task.id, getattr(task, "title", task.id))
    columns = [MetricColumn(s.name, bool(s.higher_is_better), getattr(s, "description", "")) for s in _spec_list(metric_specs)]
    if not columns:
        raise ValueError(f"task {task_id}: a leaderboard needs at least one metric")
    rows = [_row(summary, columns) for summary in _latest_per_run(summaries)]
    ranked_by, note = _ranking_metric(columns, rows)
    _rank(rows, columns, ranked_by)
    order = {RANKED: 0, NOT_RANKED: 1, INVALID: 2}
    rows.sort(key=lambda row: (order[row.status], row.rank or 0, *(_sort_key(row, columns, ranked_by) if row.status == RANKED else ()), row.team, row.run))
    return Leaderboard(task_id, title, columns, ranked_by, rows, note, version)


def _spec_list(metric_specs: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
    return list(metric_specs.values()) if isinstance(metric_specs, Mapping) else list(metric_specs)


def _latest_per_run(summaries: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One summary per (team, run): a later duplicate (a retried task) replaces an earlier one."""
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for summary in summaries:
        if summary:
            latest[(str(summary["team"]), str(summary["run"]))] = summary
    return list(latest.values())


def _row(summary: Mapping[str, Any], columns: list[MetricColumn]) -> Row:
    metrics = summary.get("metrics") or {}
    not_computed = {k: str(v) for k, v in (summary.get("not_computed") or {}).items() if v}
    values = {c.name: _number(metrics.get(c.name)) for c in columns}
    for name, value in values.items():
        if value is None and summary.get("verdict") == "valid":
            not_computed.setdefault(name, "not computed")
    if summary.get("verdict") != "valid":
        reason = summary.get("reason") or f"the run is {summary.get('verdict', 'invalid')}: see its validation report"
        return Row(str(summary["team"]), str(summary["run"]), INVALID, {c.name: None for c in columns}, {}, None, str(reason))
    return Row(str(summary["team"]), str(summary["run"]), NOT_RANKED, values, not_computed)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return None if number != number else number  # NaN is "not computed", never a score


def _ranking_metric(columns: list[MetricColumn], rows: list[Row]) -> tuple[str | None, str]:
    """The primary metric if any valid run has it; else the first computed one, with a note saying so."""
    valid = [row for row in rows if row.status != INVALID]
    primary = columns[0].name
    if not valid or any(row.values[primary] is not None for row in valid):
        return primary, ""
    reason = next((row.not_computed.get(primary) for row in valid if row.not_computed.get(primary)), "not computed")
    for column in columns[1:]:
        if any(row.values[column.name] is not None for row in valid):
            return column.name, f"{primary} was not computed ({reason}); runs are ranked provisionally by {column.name}"
    return None, f"no metric was computed ({reason}); no run is ranked"


def _rank(rows: list[Row], columns: list[MetricColumn], ranked_by: str | None) -> None:
    if ranked_by is None:
        for row in rows:
            if row.status == NOT_RANKED:
                row.note = row.note or "no metric was computed"
        return
    candidates = []
    for row in rows:
        if row.status == INVALID:
            continue
        if row.values[ranked_by] is None:
            row.note = f"{ranked_by}: {row.not_computed.get(ranked_by, 'not computed')}"
            continue
        candidates.append(row)
    candidates.sort(key=lambda row: (*_sort_key(row, columns, ranked_by), row.team, row.run))
    keys = [_tie_key(row.values[ranked_by]) for row in candidates]
    for row, rank in zip(candidates, competition_ranks(keys)):
        row.status, row.rank = RANKED, rank


def _sort_key(row: Row, columns: list[MetricColumn], ranked_by: str | None) -> tuple:
    """Best first: the ranking metric, then every other metric in order; missing values last."""
    order = [c for c in columns if c.name == ranked_by] + [c for c in columns if c.name != ranked_by]
    key: list[Any] = []
    for column in order:
        value = row.values.get(column.name)
        if value is None:
            key.append((1, 0.0))
        else:
            rounded = _tie_key(value)
            key.append((0, -rounded if column.higher_is_better else rounded))
    return tuple(key)


def _tie_key(value: float | None) -> float | None:
    return None if value is None else round(float(value), TIE_DECIMALS)


def competition_ranks(sorted_keys: Sequence[Any]) -> list[int]:
    """Ranks of already sorted values where equal values share a rank: 1, 2, 2, 4."""
    ranks: list[int] = []
    for position, key in enumerate(sorted_keys):
        ranks.append(ranks[-1] if position and key == sorted_keys[position - 1] else position + 1)
    return ranks


# --- escaping ----------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """Text a spreadsheet would run as a formula gets a leading apostrophe (OWASP CSV injection)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}
_LATEX_PATTERN = re.compile("|".join(re.escape(char) for char in _LATEX_SPECIALS))


def latex_escape(value: Any) -> str:
    """Every LaTeX special character of ``value`` as text (one pass, so replacements are not re-escaped)."""
    return _LATEX_PATTERN.sub(lambda match: _LATEX_SPECIALS[match.group()], str(value))


@lru_cache(maxsize=1)
def html_environment() -> Environment:
    """Jinja2 for the HTML page: every value HTML-escaped, whatever the template's file name."""
    return Environment(loader=FileSystemLoader(str(TEMPLATE_DIR / "leaderboard")), autoescape=True,
                       undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


@lru_cache(maxsize=1)
def latex_environment() -> Environment:
    """Jinja2 for LaTeX: ``<< >>`` and ``<% %>`` delimiters (braces are LaTeX's), every value escaped."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR / "leaderboard")),
        block_start_string="<%", block_end_string="%>",
        variable_start_string="<<", variable_end_string=">>",
        comment_start_string="<#", comment_end_string="#>",
        finalize=latex_escape,
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
