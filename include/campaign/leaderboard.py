"""Leaderboards: rank the runs of one task and export the table as CSV, JSON, HTML and LaTeX.

Runs are ranked by the task's primary metric in the direction the metric registry gives; runs
with equal primary values share a rank (competition ranking: 1, 2, 2, 4) and are ordered among
themselves by the other metrics. A metric that was not computed (it needs a model that was not
available) shows as "n/c" in every export, never as 0, and is never ranked on: if the primary
metric was computed for no run at all, the first metric that was computed ranks the runs
provisionally and every export says so. Valid runs without the ranking value and invalid runs
are listed apart, unranked.

Each ranked run also gets, from its per-item scores (``include/campaign/significance.py``), a 95 %
bootstrap interval of the ranking metric and a significance group: runs not significantly different
from the best run share its group ``a`` (paired randomization tests, Holm-corrected). Every export
shows them (CSV/JSON columns, HTML and LaTeX columns) and a figure draws every ranked run's value
with its interval and group (SVG inside the HTML page, PDF beside the LaTeX table).

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

from include.campaign import significance as stats
from include.campaign.mail import TEMPLATE_DIR
from include.campaign.significance import interval_text

NOT_COMPUTED = "n/c"
RANKED, NOT_RANKED, INVALID = "ranked", "not ranked", "invalid"
# Values that differ only beyond this many decimals are the same score (float noise).
TIE_DECIMALS = 12
DISPLAY_DECIMALS = 4
CSV_COLUMNS_BEFORE = ("rank", "team", "run", "status")
CSV_COLUMNS_STATISTICS = ("ci_low", "ci_high", "group", "p_vs_best")
CSV_COLUMNS_AFTER = ("coverage", "note")
FIGURE_PDF = "leaderboard-figure.pdf"


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
    interval: tuple[float, float] | None = None  # bootstrap interval of the ranking metric
    group: str = ""  # significance group marker (a = not significantly different from the best run)
    p_vs_best: float | None = None  # Holm-adjusted p-value of the test against the best run
    differs_from_best: bool | None = None  # None: not tested
    coverage: str = ""  # "answered/total" test items the run answered (its validation counts), "" when unknown

    def value_text(self, metric: str, decimals: int | None = DISPLAY_DECIMALS) -> str:
        """The value as shown: rounded for display, "n/c" when not computed, empty for invalid runs."""
        if self.status == INVALID:
            return ""
        value = self.values.get(metric)
        if value is None:
            return NOT_COMPUTED
        return repr(float(value)) if decimals is None else f"{value:.{decimals}f}"

    @property
    def coverage_share(self) -> float | None:
        """The answered share of the test items (for sorting the HTML column), None when unknown."""
        answered, _, total = self.coverage.partition("/")
        return int(answered) / int(total) if answered.isdigit() and total.isdigit() and int(total) else None


@dataclass
class Leaderboard:
    task: str
    title: str
    columns: list[MetricColumn]
    ranked_by: str | None
    rows: list[Row]
    note: str = ""
    version: str | None = None
    # How intervals and groups were computed (method, seed, resamples...), or why there are none.
    statistics: dict[str, Any] = field(default_factory=dict)

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
    def has_coverage(self) -> bool:
        """True when some valid run knows its coverage: the HTML and LaTeX tables then show the column."""
        return any(row.coverage for row in self.rows if row.status != INVALID)

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
                "coverage": row.coverage or None,
                "interval": list(row.interval) if row.interval else None,
                "group": row.group or None,
                "p_vs_best": row.p_vs_best,
                "differs_from_best": row.differs_from_best,
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
            "statistics": self.statistics,
            "rows": self.to_records(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"

    def to_csv(self) -> str:
        """Exact values; "n/c" where a metric was not computed; invalid runs with empty metric cells."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([*CSV_COLUMNS_BEFORE, *(c.name for c in self.columns), *CSV_COLUMNS_STATISTICS, *CSV_COLUMNS_AFTER])
        for row in self.rows:
            cells = ["" if row.rank is None else str(row.rank), spreadsheet_safe(row.team), spreadsheet_safe(row.run), row.status]
            cells += [row.value_text(c.name, decimals=None) for c in self.columns]
            cells += [*(repr(bound) for bound in row.interval or ("", ""))] if row.interval else ["", ""]
            cells += [row.group, "" if row.p_vs_best is None else repr(row.p_vs_best)]
            writer.writerow(cells + [row.coverage, spreadsheet_safe(row.note)])
        return buffer.getvalue()

    def to_html(self) -> str:
        """A standalone page: escaped by the autoescaping template, sortable by clicking a header."""
        from markupsafe import Markup

        template = html_environment().get_template("leaderboard.html.j2")
        svg = self.figure("svg").decode("utf-8") if self.has_intervals else ""
        # matplotlib draws text as paths; the only copies of participants' text are in comments, dropped here.
        figure = Markup(re.sub(r"<!--.*?-->", "", svg[svg.index("<svg"):], flags=re.S)) if svg else ""
        return template.render(board=self, NOT_COMPUTED=NOT_COMPUTED, team_ranks=self.team_ranks(), figure=figure,
                               interval_text=interval_text, settings_text=self.statistics_text())

    def to_latex(self) -> str:
        """A ``booktabs`` table for the working-notes overview; every value is LaTeX-escaped."""
        best = self.best_values()
        body = [
            {
                "rank": "" if row.rank is None else str(row.rank),
                "team": row.team,
                "run": row.run,
                "interval": interval_text(row.interval) if row.status == RANKED else "",
                "group": row.group,
                "coverage": row.coverage,
                "cells": [
                    {"text": row.value_text(c.name), "best": row.status == RANKED and row.values.get(c.name) is not None
                     and _tie_key(row.values[c.name]) == _tie_key(best.get(c.name))}
                    for c in self.columns
                ],
            }
            for row in self.rows
            if row.status != INVALID
        ]
        return latex_environment().get_template("leaderboard.tex.j2").render(
            board=self, body=body, ranked_count=len(self.ranked), with_statistics=self.has_intervals,
            settings_text=self.statistics_text(), figure_file=FIGURE_PDF)

    # --- statistics ----------------------------------------------------------------------------

    @property
    def has_intervals(self) -> bool:
        return any(row.interval for row in self.ranked)

    def statistics_text(self) -> str:
        """How to read the intervals and groups (or why there are none), one paragraph."""
        settings = self.statistics.get("settings")
        if not settings:
            return self.statistics.get("note", "")
        text = (f"Intervals and groups on {self.ranked_by}: {stats.settings_text(settings)}. Runs sharing a letter "
                "are not significantly different from that group's best run; group a holds the best run.")
        return f"{text} {self.statistics['note']}" if self.statistics.get("note") else text

    def figure(self, file_format: str) -> bytes:
        """Every ranked run's value with its interval, coloured by group (``svg`` or ``pdf``); the figure
        is drawn once per board state and rendered in each format asked for."""
        from include.campaign.figures import draw_intervals, render

        rows = self.ranked
        drawn = dict(
            labels=[f"{row.rank}. {row.team} / {row.run}" for row in rows],
            values=[row.values[self.ranked_by] for row in rows],
            intervals=[row.interval for row in rows],
            groups=[row.group for row in rows],
            metric=f"{self.ranked_by} ({self.ranking_column.arrow})" if self.ranking_column else "",
            title=f"{self.title} ({self.version})" if self.version else self.title,
        )
        cached = getattr(self, "_drawn", None)
        if cached is None or cached[0] != drawn:
            cached = self._drawn = (drawn, draw_intervals(**drawn))
        return render(cached[1], file_format)

    def exports(self) -> dict[str, bytes]:
        """Every export by name (csv, json, html, latex, figure_pdf), as bytes."""
        return {"csv": self.to_csv().encode("utf-8"), "json": self.to_json().encode("utf-8"),
                "html": self.to_html().encode("utf-8"), "latex": self.to_latex().encode("utf-8"),
                "figure_pdf": self.figure("pdf")}


# --- building ----------------------------------------------------------------------------------


def build(task: Any, summaries: Iterable[Mapping[str, Any]], metric_specs: Sequence[Any] | Mapping[str, Any],
          version: str | None = None) -> Leaderboard:
    """Rank the runs of one task.

    ``task`` is a task id or an object with ``id`` and ``title``; ``summaries`` are the per-run
    summaries of :func:`include.campaign.evaluation.score_one` (team, run, verdict, metrics,
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


def add_statistics(board: Leaderboard, item_tables: Mapping[tuple[str, str], Any], metric_specs: Sequence[Any] | Mapping[str, Any],
                   *, seed: int = stats.DEFAULT_SEED, resamples: int = stats.DEFAULT_RESAMPLES, alpha: float = stats.DEFAULT_ALPHA,
                   level: float = stats.DEFAULT_LEVEL, method: str = stats.PERMUTATION) -> Leaderboard:
    """Give the ranked runs their interval and significance group on the ranking metric, in place.

    ``item_tables`` maps (team, run) to the run's per-item table (pandas, index = item id, the
    columns of its ``per_item.csv``). A run without usable item data keeps no interval and a note
    says why; ``board.statistics`` records the settings (seed, resamples...) or why nothing was computed.
    """
    if board.ranked_by is None or not board.ranked:
        board.statistics = {"metric": board.ranked_by, "note": "no ranked run: no intervals or groups"}
        return board
    spec = next(s for s in _spec_list(metric_specs) if s.name == board.ranked_by)
    form = getattr(spec, "corpus_statistic", None) or stats.MEAN
    try:
        stats.rule_for(form)
    except stats.StatisticsError as exc:
        board.statistics = {"metric": board.ranked_by, "form": form, "note": f"{board.ranked_by}: {exc}; no intervals or groups"}
        return board
    usable, skipped = _usable_item_data(board, item_tables, form)
    if not usable:
        board.statistics = {"metric": board.ranked_by, "form": form, "note": "no ranked run has usable per-item scores: " + "; ".join(skipped)}
        return board
    try:
        data, items = stats.align([table for _, table in usable])
        result = stats.significance_groups(data, form, spec.higher_is_better, resamples, seed, alpha, level, method)
    except stats.StatisticsError as exc:  # e.g. runs scored on disjoint items: the board is still published
        board.statistics = {"metric": board.ranked_by, "form": form, "note": f"no intervals or groups: {exc}"}
        return board
    for (row, _), run in zip(usable, result.runs):
        row.interval, row.group = run.interval, run.group
        row.p_vs_best = run.p_vs_best
        row.differs_from_best = run.differs_from_best
    notes = []
    largest = max(len(table) for _, table in usable)
    if len(items) < largest:
        notes.append(f"tested on the {len(items)} items every run has (some runs have up to {largest})")
    if skipped:
        notes.append(f"no interval or group for {len(skipped)} ranked run(s): " + "; ".join(skipped))
    if usable[0][0] is not board.ranked[0]:
        notes.append(f"the best run with per-item scores is {usable[0][0].team}/{usable[0][0].run} (rank {usable[0][0].rank})")
    board.statistics = {"metric": board.ranked_by, "form": form, "settings": {**result.settings, "items": len(items)},
                        "note": "; ".join(notes)}
    return board


def _usable_item_data(board: Leaderboard, item_tables: Mapping[tuple[str, str], Any], form: str) -> tuple[list, list[str]]:
    usable, skipped = [], []
    for row in board.ranked:
        table = item_tables.get((row.team, row.run))
        data = None if table is None else stats.item_data(table, board.ranked_by, form)
        why = "no per-item scores" if data is None or data.empty else stats.check_value(data.to_numpy(dtype=float), form, row.values[board.ranked_by])
        if why:
            skipped.append(f"{row.team}/{row.run}: {why}")
        else:
            usable.append((row, data))
    return usable, skipped


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
        return Row(str(summary["team"]), str(summary["run"]), INVALID, {c.name: None for c in columns}, {}, None, str(reason), coverage=_coverage(summary))
    return Row(str(summary["team"]), str(summary["run"]), NOT_RANKED, values, not_computed, coverage=_coverage(summary))


def _coverage(summary: Mapping[str, Any]) -> str:
    """``answered/total`` from the run summary's coverage counts, or "" when the run has none."""
    coverage = summary.get("coverage") or {}
    if coverage.get("answered") is None or not coverage.get("total"):
        return ""
    return f"{coverage['answered']}/{coverage['total']}"


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
