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
    positions = list(range(len(values)))[::-1]
    rows = list(zip(positions, values, intervals, groups))
    colours = group_colours(groups)
    for group, colour in colours.items():
        _draw_group(axes, [row for row in rows if row[3] == group], colour)
    _draw_group_letters(axes, rows, colours)
    axes.set_yticks(positions, labels=list(labels), fontsize=8)
    axes.set_xlabel(f"{metric}: value and 95 % bootstrap interval; letter = significance group", fontsize=8)
    # y=1.0 is where matplotlib places the title anyway (no x ticks on top, no y offset text); given,
    # it spares every layout and draw measuring all y tick labels to find that out.
    axes.set_title(title if values else f"{title}: no ranked run", fontsize=10, y=1.0)
    axes.grid(axis="x", color="#ddd", linewidth=0.5)
    axes.set_ylim(-0.7, len(values) - 0.3)
    figure.tight_layout()
    # tight_layout leaves a placeholder layout engine, for which savefig draws the whole figure once
    # more before rendering it; the layout is final, so without an engine each render draws once.
    figure.set_layout_engine(None)
    # The y label is empty, so never drawn, but placing it measures every y tick label on each render;
    # it has counted in the layout above, fixed coordinates now skip that measuring.
    axes.yaxis.set_label_coords(0.0, 0.5)
    return figure


def group_colours(groups: Sequence[str]) -> dict[str, str]:
    """Each group's colour, in the palette's order of the groups sorted a, b, ..., z, aa, ...

    The empty group (runs without an interval) sorts first and so takes a colour like any other.
    """
    order = sorted(set(groups), key=lambda g: (len(g), g))
    return {group: PALETTE[i % len(PALETTE)] for i, group in enumerate(order)}


def _draw_group(axes, rows: list, colour: str) -> None:
    """One errorbar call for the group's runs with an interval, one marker line for those without."""
    with_interval = [row for row in rows if row[2]]
    if with_interval:
        positions, values = [row[0] for row in with_interval], [row[1] for row in with_interval]
        below = [value - row[2][0] for value, row in zip(values, with_interval)]
        above = [row[2][1] - value for value, row in zip(values, with_interval)]
        axes.errorbar(values, positions, xerr=[below, above], fmt="o", color=colour, capsize=3, markersize=4)
    alone = [row for row in rows if not row[2]]
    if alone:  # the value only, styled as an errorbar's marker (same zorder)
        axes.plot([row[1] for row in alone], [row[0] for row in alone], "o", color=colour, markersize=4, zorder=2.1)


def _draw_group_letters(axes, rows: list, colours: dict[str, str]) -> None:
    """Each run's group letter 6 points right of its interval; none for a run without an interval."""
    from matplotlib.transforms import ScaledTranslation

    # A text in a shifted transform: the place of an "offset points" annotation, cheaper to lay out and draw.
    right_of_interval = axes.transData + ScaledTranslation(6 / 72, 0, axes.figure.dpi_scale_trans)
    lettered = [(y, interval[1], group) for y, _, interval, group in rows if interval and group]
    bounding = letters_bounding_the_layout(lettered)
    for y, high, group in lettered:
        axes.text(high, y, group, transform=right_of_interval, va="center", fontsize=8, color=colours[group],
                  in_layout=(y, high, group) in bounding)


def letters_bounding_the_layout(lettered: list[tuple[int, float, str]]) -> set[tuple[int, float, str]]:
    """Of the (row, interval end, letter) drawn, those tight_layout has to measure: per letter the one
    furthest right, the top one and the bottom one. Every other letter lies within these (same offset
    from its interval end, same height), so the layout is the one all letters would give."""
    if not lettered:
        return set()
    furthest_right = {}
    for row in lettered:
        if row[2] not in furthest_right or row[1] > furthest_right[row[2]][1]:
            furthest_right[row[2]] = row
    return {*furthest_right.values(), max(lettered), min(lettered)}


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
