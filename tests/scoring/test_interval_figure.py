"""The leaderboard interval figure (include/campaign/figures.py) read from its matplotlib artists, not pixels:
one errorbar per significance group, a letter per run with an interval, a run without one as its value alone,
the same layout as measuring every letter, and the same bytes on every render."""
from __future__ import annotations

import pytest
from matplotlib.colors import to_hex
from matplotlib.container import ErrorbarContainer

from include.campaign import figures

# (value, interval, group): group b holds a run without an interval (stats left it out), the last two
# runs have neither interval nor group, as a board gives them.
RUNS = [(0.90, (0.85, 0.95), "a"), (0.88, (0.80, 0.93), "a"), (0.70, (0.65, 0.75), "b"), (0.60, None, "b"),
        (0.50, (0.45, 0.55), "c"), (0.40, None, ""), (0.30, None, "")]


def draw(runs=RUNS, title="Task (v0001)"):
    labels = [f"{rank}. team-{rank} / run" for rank in range(1, len(runs) + 1)]
    values, intervals, groups = (list(column) for column in zip(*runs)) if runs else ([], [], [])
    return figures.draw_intervals(labels, values, intervals, groups, "metric (↑)", title)


def row_position(index: int, runs=RUNS) -> int:
    return len(runs) - 1 - index  # best run at the top


def test_one_errorbar_per_group_and_a_run_without_interval_is_its_value_alone():
    axes = draw().axes[0]
    colours = figures.group_colours([group for _, _, group in RUNS])
    errorbars = [c for c in axes.containers if isinstance(c, ErrorbarContainer)]
    assert len(errorbars) == 3  # a, b, c; the runs of group "" have no interval
    drawn = {}
    for container in errorbars:
        data_line, caps, (bars,) = container.lines
        assert data_line.get_marker() == "o" and data_line.get_linestyle() == "None" and data_line.get_markersize() == 4
        assert len(caps) == 2 and len(bars.get_segments()) == len(data_line.get_xdata())
        colour = to_hex(data_line.get_color())
        assert {to_hex(bars.get_color()[0]), *(to_hex(cap.get_color()) for cap in caps)} == {colour}
        drawn[colour] = sorted(zip(data_line.get_ydata(), data_line.get_xdata()))
        for y, (low, high) in zip(data_line.get_ydata(), (segment[:, 0] for segment in bars.get_segments())):
            value, interval, _ = RUNS[row_position(int(y))]
            assert (low, high) == pytest.approx(interval)
    expected = {}
    for index, (value, interval, group) in enumerate(RUNS):
        if interval:
            expected.setdefault(colours[group], []).append((row_position(index), value))
    assert drawn == {colour: sorted(points) for colour, points in expected.items()}

    alone = [(index, value) for index, (value, interval, _) in enumerate(RUNS) if interval is None]
    markers = [line for line in axes.lines if line not in {c.lines[0] for c in errorbars} and line.get_marker() == "o"]
    assert sorted((y, x) for line in markers for x, y in zip(line.get_xdata(), line.get_ydata())) == \
        sorted((row_position(index), value) for index, value in alone)
    assert all(to_hex(line.get_color()) in {colours["b"], colours[""]} for line in markers)

    letters = sorted((text.get_position()[1], text.get_position()[0], text.get_text(), text.get_color()) for text in axes.texts)
    assert letters == sorted((row_position(index), interval[1], group, colours[group])
                             for index, (_, interval, group) in enumerate(RUNS) if interval)
    labels = dict(zip(axes.get_yticks(), (label.get_text() for label in axes.get_yticklabels())))
    assert labels == {row_position(index): f"{index + 1}. team-{index + 1} / run" for index in range(len(RUNS))}


def test_the_layout_is_the_one_measuring_every_letter_gives(monkeypatch):
    # Many groups, and a lower run with a wide interval whose (wide) letter ends furthest right.
    runs = [(0.9 - 0.01 * i, (0.88 - 0.01 * i, 0.92 - 0.01 * i), "abcdefghijklmnopqrstuvwxyz"[i % 26] * (1 + i // 26))
            for i in range(60)]
    runs[45] = (runs[45][0], (0.2, 0.99), "wwwwwwww")
    cheap = draw(runs).subplotpars
    monkeypatch.setattr(figures, "letters_bounding_the_layout", set)  # every letter measured
    every = draw(runs).subplotpars
    assert [getattr(cheap, side) for side in ("left", "right", "bottom", "top")] == \
        [getattr(every, side) for side in ("left", "right", "bottom", "top")]
    assert every.right < 0.95  # the widest letter at the far right did move the layout


def test_rendering_is_reproducible_and_draws_text_as_paths():
    for runs in (RUNS, []):
        svg, pdf = (figures.render(draw(runs), file_format) for file_format in ("svg", "pdf"))
        assert svg == figures.render(draw(runs), "svg") and pdf == figures.render(draw(runs), "pdf")
        assert b"<text" not in svg and b"CreationDate" not in pdf
    figure = draw()
    assert figures.render(figure, "svg") == figures.render(figure, "svg")
