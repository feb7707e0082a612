"""A mapped scoring instance's batch: the store traffic overlaps the judging, and nothing else changes.

``evaluation.score_batch`` downloads the next run and uploads the last runs' outputs while it
validates and scores a run. These tests hold it to the one-run-at-a-time path (``score_one``): the
same summaries and the same objects, every scratch folder removed, each transfer in its own thread.
"""
from __future__ import annotations

import tempfile
import threading

import pytest

from include.campaign import evaluation
from scoring_fixtures import GANS_GOLD, collect, gans_gold, gans_run, stage_gold

TASK = "gans-detection"
RUNS = {
    ("team-a", "alpha"): gans_run(GANS_GOLD),
    ("team-b", "bravo"): gans_run({**GANS_GOLD, "7": 0, "8": 1}),
    ("team-c", "charlie"): b"id,label\n1,maybe\n",  # invalid: judged, reported, not ranked
    ("team-d", "delta"): gans_run({**GANS_GOLD, "1": 1}),
    ("team-e", "echo"): gans_run({**GANS_GOLD, "2": 0}),
    ("team-f", "foxtrot"): gans_run({**GANS_GOLD, "3": 0, "4": 1}),
}
PER_RUN = ("report.json", "report.txt", "metrics.json", "per_item.csv")


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The temporary folders' parent, watched: every run's scratch folder is made under it."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def planned(ctx, reason: str) -> tuple[str, list[dict]]:
    version = evaluation.new_version(ctx, TASK, reason, "test")
    return version, [{**item, "task": TASK, "version": version} for item in evaluation.plan(ctx, TASK)]


def run_objects(ctx, version: str, team: str, run: str) -> dict[str, bytes]:
    return {name: ctx.store.get_bytes(ctx.layout.run_output(TASK, version, team, run, name)) for name in PER_RUN
            if ctx.store.exists(ctx.layout.run_output(TASK, version, team, run, name))}


def comparable(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("scored_in", "task", "version")}


def test_a_batch_gives_what_scoring_one_run_at_a_time_gives(ctx, scratch):
    stage_gold(ctx, TASK, gans_gold())
    entries = collect(ctx, TASK, RUNS)
    tampered = entries[-1]
    ctx.store.put_bytes(tampered["key"], gans_run(GANS_GOLD))  # changed after collection: reported, not scored

    one_version, one_items = planned(ctx, "one at a time")
    one_by_one = [evaluation.score_one(ctx, TASK, one_version, item) for item in one_items]
    batch_version, batch_items = planned(ctx, "as a batch")
    batched = evaluation.score_batch(ctx, batch_items)

    assert [comparable(s) for s in batched] == [comparable(s) for s in one_by_one]
    assert [s["verdict"] for s in batched] == ["valid", "valid", "invalid", "valid", "valid", "error"]
    assert all(s["task"] == TASK and s["version"] == batch_version == s["scored_in"] for s in batched)
    for team, run in RUNS:
        assert run_objects(ctx, batch_version, team, run) == run_objects(ctx, one_version, team, run), (team, run)
    assert list(scratch.glob("run-*")) == []


def test_downloads_and_uploads_run_beside_the_judging_in_their_own_threads(ctx, scratch, monkeypatch):
    stage_gold(ctx, TASK, gans_gold())
    collect(ctx, TASK, RUNS)
    version, items = planned(ctx, "threads")
    seen: dict[str, set[str]] = {"download": set(), "upload": set()}
    download, upload = ctx.store.download_with_sha256, ctx.store.put_many

    def watched(kind, call):
        def record(*args, **kwargs):
            seen[kind].add(threading.current_thread().name)
            return call(*args, **kwargs)
        return record

    monkeypatch.setattr(ctx.store, "download_with_sha256", watched("download", download))
    monkeypatch.setattr(ctx.store, "put_many", watched("upload", upload))
    evaluation.score_batch(ctx, items)
    main = threading.current_thread().name
    assert seen["download"] and main not in seen["download"] and all(name.startswith("run-download") for name in seen["download"])
    assert seen["upload"] and main not in seen["upload"] and all(name.startswith("run-upload") for name in seen["upload"])
    assert all(run_objects(ctx, version, team, run) for team, run in RUNS)
    assert list(scratch.glob("run-*")) == []


def test_a_run_missing_from_the_store_fails_the_batch_and_leaves_no_scratch(ctx, scratch):
    stage_gold(ctx, TASK, gans_gold())
    entries = collect(ctx, TASK, RUNS)
    ctx.store.delete(entries[3]["key"])
    _, items = planned(ctx, "a run is gone")
    with pytest.raises(Exception) as raised:
        evaluation.score_batch(ctx, items)
    assert entries[3]["key"] in str(raised.value)
    assert list(scratch.glob("run-*")) == []


def test_a_gold_folder_lacking_a_file_stops_the_batch_naming_it_and_checks_it_once(ctx, scratch, monkeypatch):
    from include.campaign.evaluation import scoring

    stage_gold(ctx, TASK, {"other.csv": b"id,label\n1,0\n"})
    collect(ctx, TASK, RUNS)
    _, items = planned(ctx, "gold lacks labels.csv")
    checks = []
    monkeypatch.setattr(scoring, "_missing_gold", lambda task, folder, check=scoring._missing_gold: checks.append(folder) or check(task, folder))
    with pytest.raises(evaluation.ScoringError, match=r"gans-detection: the gold folder .* lacks .*labels\.csv"):
        evaluation.score_batch(ctx, items)
    assert len(checks) == 1
    stage_gold(ctx, TASK, gans_gold())
    _, items = planned(ctx, "gold complete")
    checks.clear()
    assert [s["verdict"] for s in evaluation.score_batch(ctx, items)] == ["valid", "valid", "invalid", "valid", "valid", "valid"]
    assert len(checks) == 1
    assert list(scratch.glob("run-*")) == []
