"""The HTML leaderboard with intervals and groups in a real browser (Debian's chromium through Playwright).

Checks that the embedded SVG figure is drawn, the interval and group columns are shown and sort,
and saves a screenshot to ``docs/screenshots/leaderboard-significance.png``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from include.campaign import leaderboard
from include.metrics.registry import METRICS

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOT = ROOT / "docs" / "screenshots" / "leaderboard-significance.png"


def board_with_statistics() -> leaderboard.Leaderboard:
    specs = [METRICS["vqa_meteor"], METRICS["vqa_rouge1"]]
    rng = np.random.default_rng(3)
    base = rng.random(400)
    summaries, tables = [], {}
    for number, shift in enumerate((0.20, 0.195, 0.19, 0.15, 0.12, 0.118, 0.05, 0.0)):
        scores = np.clip(base * 0.6 + shift + rng.normal(0, 0.05, 400), 0, 1)
        team, run = f"team-{chr(97 + number)}", f"run<{number}>"
        tables[(team, run)] = pd.DataFrame({"vqa_meteor": scores}, index=[f"q{i}" for i in range(400)])
        summaries.append({"team": team, "run": run, "verdict": "valid",
                          "metrics": {"vqa_meteor": float(scores.mean()), "vqa_rouge1": float(scores.mean()) / 2}})
    board = leaderboard.build("vqa-gi-answering", summaries, specs, version="v0002")
    return leaderboard.add_statistics(board, tables, specs, resamples=2000)


def test_the_page_draws_the_figure_and_shows_sortable_intervals_and_groups(tmp_path):
    from playwright.sync_api import sync_playwright

    board = board_with_statistics()
    page_file = tmp_path / "leaderboard.html"
    page_file.write_text(board.to_html(), encoding="utf-8")
    groups = [row.group for row in board.ranked]
    assert len(set(groups)) >= 3, groups
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_default_timeout(15000)
            page.goto(page_file.as_uri())
            figure = page.locator("figure.intervals svg")
            box = figure.bounding_box()
            assert box and box["width"] > 300 and box["height"] > 150
            headers = page.locator("#ranked th").all_inner_texts()
            assert headers[-2:] == ["95 % CI (vqa_meteor)", "Group"]
            shown = page.locator("#ranked tbody tr td.group").all_inner_texts()
            assert shown == groups
            assert page.locator("#ranked tbody tr").first.locator("td").nth(1).inner_text() == "team-a"
            page.locator("#ranked th", has_text="95 % CI").locator("button").click()  # ascending by lower bound
            assert page.locator("#ranked tbody tr").first.locator("td").nth(1).inner_text() == board.ranked[-1].team
            assert "Holm" in page.locator("p.statistics").inner_text()
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.locator("#ranked th", has_text="Rank").locator("button").click()
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
