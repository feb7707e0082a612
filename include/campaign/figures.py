"""Leaderboard figures: each ranked run's value with its confidence interval, coloured by significance group.

matplotlib is imported only when a figure is drawn, with the non-interactive Agg backend (no
display needed). Output is reproducible: no creation date in the PDF, a fixed SVG id salt, text
drawn as paths (so participant-chosen names never become markup inside the HTML page).
"""
from __future__ import annotations

import io
from typing import Sequence

PALETTE = ("#1b6ca8", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#666666")
ROW_INCHES = 0.28
WIDTH_INCHES = 7.0


def interval_figure(labels: Sequence[str], values: Sequence[float], intervals: Sequence[Sequence[float]],
                    groups: Sequence[str], metric: str, title: str, file_format: str = "svg") -> bytes:
    """One horizontal interval per run, best at the top; the group letter at the right of each interval.

    A run whose interval is None is drawn as its value alone, without a group letter.
    """
    return render(draw_intervals(labels, values, intervals, groups, metric, title), file_format)


def draw_intervals(labels: Sequence[str], values: Sequence[float], intervals: Sequence[Sequence[float]],
                   groups: Sequence[str], metric: str, title: str):
    """The figure of :func:`interval_figure`, drawn once, to :func:`render` in as many formats as needed."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_INCHES, 1.2 + ROW_INCHES * max(len(values), 1)))
    axes = figure.add_subplot()
    order = sorted(set(groups), key=lambda g: (len(g), g))
    colours = {group: PALETTE[i % len(PALETTE)] for i, group in enumerate(order)}
    positions = list(range(len(values)))[::-1]
    for y, value, interval, group in zip(positions, values, intervals, groups):
        low, high = interval or (value, value)  # a run without item scores: its value only
        axes.errorbar([value], [y], xerr=[[value - low], [high - value]], fmt="o", color=colours.get(group, "#000"),
                      capsize=3, markersize=4)
        axes.annotate(group, (high, y), xytext=(6, 0), textcoords="offset points", va="center", fontsize=8,
                      color=colours.get(group, "#000"))
    axes.set_yticks(positions, labels=list(labels), fontsize=8)
    axes.set_xlabel(f"{metric}: value and 95 % bootstrap interval; letter = significance group", fontsize=8)
    axes.set_title(title if values else f"{title}: no ranked run", fontsize=10)
    axes.grid(axis="x", color="#ddd", linewidth=0.5)
    axes.set_ylim(-0.7, len(values) - 0.3)
    figure.tight_layout()
    return figure


def render(figure, file_format: str) -> bytes:
    """A drawn figure as reproducible ``svg`` or ``pdf`` bytes."""
    if file_format not in ("svg", "pdf"):
        raise ValueError(f"figure format must be svg or pdf, not {file_format!r}")
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "clef-campaign", "svg.fonttype": "path"}):
        metadata = {"Date": None} if file_format == "svg" else {"CreationDate": None, "ModDate": None}
        figure.savefig(buffer, format=file_format, metadata=metadata)
    return buffer.getvalue()
