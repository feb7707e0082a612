"""Scoring over the real moto S3 server: plans, create-once versions, per-run outputs, lineage, re-scores and diffs."""
from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
import threading
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from include.campaign import evaluation as scoring
from scoring_fixtures import (
    GANS_GOLD, collect, concepts_gold, concepts_run, captions_run, gans_gold, gans_run, rows_from_csv, rows_from_html,
    rows_from_json, rows_from_latex, score_task, stage_gold, topicto_json,
)

TASK = "gans-detection"
B_ONE = {**GANS_GOLD, "7": 0, "8": 1}  # wrong on 7 and 8
RUNS = {
    ("team-a", "a-best"): gans_run(GANS_GOLD),
    ("team-b", "b-one"): gans_run(B_ONE),
    ("team-b", "b-bad"): gans_run({"1": 0, "2": "x"}),
    ("team-c", "c-same"): gans_run(B_ONE),  # ties with team-b's b-one
}


def is_commit_of_this_checkout(commit: str) -> bool:
    """The commit is HEAD or one of its ancestors (others may commit while the tests run)."""
    answer = subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=Path(scoring.__file__).parents[3])
    return answer.returncode == 0


def kappa(predicted: dict, gold: dict) -> float:
    ids = sorted(gold)
    return float(cohen_kappa_score([gold[i] for i in ids], [predicted[i] for i in ids]))


@pytest.fixture
def gans(ctx):
    stage_gold(ctx, TASK, gans_gold())
    collect(ctx, TASK, RUNS)
    return ctx


def test_plan_reads_the_manifest_and_filters_by_team_and_run(gans):
    every = scoring.plan(gans, TASK)
    assert [(i["team"], i["run"]) for i in every] == sorted(RUNS)
    assert every[0]["sha256"] == hashlib.sha256(RUNS[("team-a", "a-best")]).hexdigest()
    assert [(i["team"], i["run"]) for i in scoring.plan(gans, TASK, teams="team-b")] == [("team-b", "b-bad"), ("team-b", "b-one")]
    assert [(i["team"], i["run"]) for i in scoring.plan(gans, TASK, runs=["team-c/c-same", "a-best"])] == [("team-a", "a-best"), ("team-c", "c-same")]
    assert scoring.plan(gans, TASK, teams="", runs=[]) == every


def test_plan_refuses_names_that_match_nothing(gans):
    with pytest.raises(scoring.ScoringError, match=r"gans-detection: no collected team named team-z; collected teams: team-a, team-b, team-c"):
        scoring.plan(gans, TASK, teams=["team-z"])
    with pytest.raises(scoring.ScoringError, match=r"no collected run named team-a/b-one"):
        scoring.plan(gans, TASK, runs="team-a/b-one")


def test_versions_are_allocated_create_once_even_when_concurrent(gans):
    allocated: list[str] = []
    lock = threading.Lock()

    def allocate(n):
        version = scoring.new_version(gans, TASK, f"re-score {n}", "olga")
        with lock:
            allocated.append(version)

    threads = [threading.Thread(target=allocate, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(allocated) == [f"v{n:04d}" for n in range(1, 7)]
    assert scoring.versions(gans, TASK) == sorted(allocated)


def test_a_retried_allocation_returns_its_version_and_a_reason_is_required(gans):
    first = scoring.new_version(gans, TASK, "runs collected", "asset", request_id="run-42")
    assert scoring.new_version(gans, TASK, "runs collected", "asset", request_id="run-42") == first
    assert scoring.new_version(gans, TASK, "runs collected", "asset", request_id="run-43") != first
    with pytest.raises(scoring.ScoringError, match="needs a reason"):
        scoring.new_version(gans, TASK, "  ", "olga")


def test_a_scoring_writes_reports_metrics_per_item_and_lineage(gans):
    outcome = score_task(gans, TASK)
    assert (outcome["version"], outcome["valid"], outcome["invalid"], outcome["ranked"], outcome["teams"]) == ("v0001", 3, 1, 3, 3)
    base = gans.layout.evaluations(TASK, "v0001")
    best = gans.store.get_json(base + "runs/team-a/a-best/metrics.json")
    assert best["verdict"] == "valid" and best["metrics"]["gans_kappa"]["value"] == pytest.approx(1.0)
    one = gans.store.get_json(base + "runs/team-b/b-one/metrics.json")
    assert one["metrics"]["gans_kappa"]["value"] == pytest.approx(kappa(B_ONE, GANS_GOLD), abs=1e-12)
    assert one["metrics"]["gans_accuracy"]["value"] == pytest.approx(6 / 8)
    per_item = list(csv.DictReader(gans.store.get_bytes(base + "runs/team-b/b-one/per_item.csv").decode().splitlines()))
    assert [row["item"] for row in per_item] == sorted(GANS_GOLD) and float(per_item[7]["gans_accuracy"]) == 0.0
    assert gans.store.get_json(base + "runs/team-b/b-one/report.json")["verdict"] == "valid"
    bad = gans.store.get_json(base + "runs/team-b/b-bad/metrics.json")
    assert bad["verdict"] == "invalid" and bad["metrics"] == {} and "label.allowed" in bad["reason"]
    assert "INVALID" in gans.store.get_bytes(base + "runs/team-b/b-bad/report.txt").decode()
    assert not gans.store.exists(base + "runs/team-b/b-bad/per_item.csv")

    lineage = gans.store.get_json(base + "lineage.json")
    commit = lineage["code_version"]["git_commit"]
    assert re.fullmatch(r"[0-9a-f]{40}", commit) and is_commit_of_this_checkout(commit)
    assert [m["name"] for m in lineage["metrics"]] == ["gans_kappa", "gans_accuracy", "gans_f1"]
    assert all(m["code_version"]["git_commit"] == commit for m in lineage["metrics"])
    assert lineage["gold"]["files"] == {"labels.csv": hashlib.sha256(gans_gold()["labels.csv"]).hexdigest()}
    assert {(r["team"], r["run"]): r["sha256"] for r in lineage["runs"]} == {k: hashlib.sha256(v).hexdigest() for k, v in RUNS.items()}
    assert (lineage["reason"], lineage["triggered_by"]) == ("runs collected", "asset runs/test")

    board = gans.store.get_json(gans.layout.leaderboards(TASK, "v0001") + "leaderboard.json")
    assert [(r["rank"], r["team"], r["run"]) for r in board["rows"]] == [
        (1, "team-a", "a-best"), (2, "team-b", "b-one"), (2, "team-c", "c-same"), (None, "team-b", "b-bad")]
    assert not gans.store.list_keys(gans.layout.public_leaderboards(TASK))  # private until published


def test_rescoring_one_team_with_changed_gold_makes_a_new_complete_version_and_keeps_the_old(gans):
    score_task(gans, TASK)
    old_prefixes = (gans.layout.evaluations(TASK, "v0001"), gans.layout.leaderboards(TASK, "v0001"))
    before = {key: gans.store.get_bytes(key) for prefix in old_prefixes for key in gans.store.list_keys(prefix)}

    new_gold = {**GANS_GOLD, "8": 1}  # the organizers fix item 8; b-one predicted 1 there
    stage_gold(gans, TASK, gans_gold(new_gold))
    outcome = score_task(gans, TASK, reason="gold label of image 8 corrected", by="olga", teams=["team-b"])

    assert outcome["version"] == "v0002" and outcome["previous_version"] == "v0001"
    assert outcome["changed"] == ["team-b/b-one"]  # b-bad stays invalid; other teams were not re-scored
    assert outcome["teams_changed"] == ["team-b"]
    assert (outcome["scored_in_this_version"], outcome["carried_forward"]) == (2, 2)
    after = {key: gans.store.get_bytes(key) for prefix in old_prefixes for key in gans.store.list_keys(prefix)}
    assert after == before
    assert all(v.is_latest for v in gans.store.list_versions(old_prefixes[0])) and len(gans.store.list_versions(old_prefixes[0])) == len(
        [k for k in before if k.startswith(old_prefixes[0])])  # never written twice

    base = gans.layout.evaluations(TASK, "v0002")
    diff = gans.store.get_json(base + "diff.json")
    change = diff["changed"][0]
    assert change["metrics"]["gans_kappa"] == {"old": pytest.approx(kappa(B_ONE, GANS_GOLD)), "new": pytest.approx(kappa(B_ONE, new_gold))}
    assert diff["rank_changes"] == [{"team": "team-c", "run": "c-same", "old_rank": 2, "new_rank": 3}]
    assert diff["reason"] == "gold label of image 8 corrected"
    evaluation = gans.store.get_json(base + "evaluation.json")
    assert {(r["team"], r["run"]): r["scored_in"] for r in evaluation["runs"]} == {
        ("team-a", "a-best"): "v0001", ("team-b", "b-bad"): "v0002", ("team-b", "b-one"): "v0002", ("team-c", "c-same"): "v0001"}
    files = {r["run"]: r["files"] for r in evaluation["runs"]}
    assert files["a-best"] == old_prefixes[0] + "runs/team-a/a-best/" and files["b-one"] == base + "runs/team-b/b-one/"
    assert gans.store.get_json(files["a-best"] + "metrics.json")["metrics"]["gans_kappa"]["value"] == pytest.approx(1.0)
    assert sorted(k[len(base):] for k in gans.store.list_keys(base + "runs/")) == [
        f"runs/team-b/{run}/{name}" for run, names in (("b-bad", ("metrics.json", "report.json", "report.txt")),
                                                       ("b-one", ("metrics.json", "per_item.csv", "report.json", "report.txt"))) for name in names]
    lineage = gans.store.get_json(base + "lineage.json")
    assert lineage["gold"]["files"]["labels.csv"] == hashlib.sha256(gans_gold(new_gold)["labels.csv"]).hexdigest()
    assert lineage["previous_version"] == "v0001" and "v0001" in lineage["warnings"][0]
    assert scoring.latest_version(gans, TASK) == "v0002"


def test_finalize_twice_changes_nothing_and_a_complete_version_takes_no_more_runs(gans):
    items = scoring.plan(gans, TASK)
    version = scoring.new_version(gans, TASK, "runs collected", "asset")
    summaries = [{**scoring.score_one(gans, TASK, version, item), "label": "added by the DAG"} for item in items]
    assert {**scoring.score_one(gans, TASK, version, items[0]), "label": "added by the DAG"} == summaries[0]  # a retried task
    first = scoring.finalize(gans, TASK, version, summaries, "runs collected", "asset")
    keys = gans.store.list_keys(gans.layout.evaluations(TASK, version))
    assert scoring.finalize(gans, TASK, version, summaries[:1], "other", "someone") == first
    assert [len(gans.store.list_versions(key)) for key in (gans.layout.evaluations(TASK, version) + "lineage.json",)] == [1]
    assert gans.store.list_keys(gans.layout.evaluations(TASK, version)) == keys
    assert all("label" not in run for run in scoring.read_evaluation(gans, TASK, version)["runs"])
    with pytest.raises(scoring.ScoringError, match="v0001 is complete and never rewritten"):
        scoring.score_one(gans, TASK, version, items[0])


def test_a_run_changed_after_collection_is_reported_and_not_scored(gans):
    items = scoring.plan(gans, TASK, runs="a-best")
    gans.store.put_bytes(items[0]["key"], gans_run({**GANS_GOLD, "1": 1}))
    version = scoring.new_version(gans, TASK, "runs collected", "asset")
    summary = scoring.score_one(gans, TASK, version, items[0])
    assert summary["verdict"] == "error" and "changed after collection" in summary["reason"] and summary["metrics"] == {}


def test_a_task_without_manifest_or_gold_gets_a_clear_error(ctx):
    with pytest.raises(scoring.ScoringError, match=r"no collection manifest at s3://.*/democlef/collected/gans-detection/manifest.json"):
        scoring.plan(ctx, TASK)
    collect(ctx, TASK, RUNS)
    version = scoring.new_version(ctx, TASK, "runs collected", "asset")
    with pytest.raises(scoring.ScoringError, match=r"no gold under s3://.*/democlef/gold/gans-detection/test/"):
        scoring.score_one(ctx, TASK, version, scoring.plan(ctx, TASK)[0])
    with pytest.raises(scoring.ScoringError, match="v0009 was never allocated"):
        scoring.score_one(ctx, TASK, "v0009", scoring.plan(ctx, TASK)[0])
    with pytest.raises(scoring.ScoringError, match="no task 'nope'"):
        scoring.plan(ctx, "nope")


def image_f1(gold: list[str], predicted: list[str]) -> float:
    g, p = {c.upper() for c in gold}, {c.upper() for c in predicted}
    return 2 * len(g & p) / (len(g) + len(p)) if g or p else 1.0


def test_three_more_tasks_score_and_their_exports_agree(ctx):
    concepts = {"img1": ["C0000001", "C0000002"], "img2": ["C0000003"], "img3": ["C0040405"]}
    manual = {"img1": [], "img2": [], "img3": ["C0040405"]}
    stage_gold(ctx, "caption-concept-detection", concepts_gold(concepts, manual))
    predictions = {
        ("team-a", "a1"): {"img1": ["C0000001"], "img2": ["c0000003"], "img3": ["C0040405"]},
        ("team-b", "b1"): {"img1": ["C0000001", "C0000002"], "img2": [], "img3": ["C0040405", "C0000009"]},
        ("team-c", "c1"): {"img1": ["C0000001"], "img2": ["C0000003"], "img3": ["C0040405"]},  # ties with a1
    }
    runs = {key: concepts_run(rows) for key, rows in predictions.items()}
    runs[("team-c", "c-bad")] = concepts_run({"img1": ["NOT-A-CUI"]})
    collect(ctx, "caption-concept-detection", runs)
    stage_gold(ctx, "topicto", {"references.json": topicto_json({"1": "je mange", "2": "le chat dort"}, "ref")})
    collect(ctx, "topicto", {("team-a", "p1"): topicto_json({"1": "je mange", "2": "le chat"}, "hyp"),
                             ("team-b", "p2"): topicto_json({"1": "je", "2": "chien"}, "hyp")})
    stage_gold(ctx, "caption-prediction", {"captions.csv": b"ID,Caption\nimg1,a chest x-ray\nimg2,ct scan of the head\n"})
    collect(ctx, "caption-prediction", {("team-a", "cap1"): captions_run({"img1": "chest x-ray", "img2": "ct of the head"}),
                                        ("team-b", "cap2"): captions_run({"img1": "a dog", "img2": "ct scan of the head"})})

    for task_id in ("caption-concept-detection", "topicto", "caption-prediction"):
        outcome = score_task(ctx, task_id)
        prefix = ctx.layout.leaderboards(task_id, outcome["version"])
        exports = {name: ctx.store.get_bytes(prefix + f"leaderboard.{name}").decode() for name in ("csv", "json", "html", "tex")}
        expected = rows_from_json(exports["json"])
        assert expected and rows_from_csv(exports["csv"]) == expected
        assert rows_from_html(exports["html"]) == expected and rows_from_latex(exports["tex"]) == expected

    board = ctx.store.get_json(ctx.layout.leaderboards("caption-concept-detection", "v0001") + "leaderboard.json")
    by_run = {r["run"]: r for r in board["rows"]}
    for (team, run), rows in predictions.items():
        expected_f1 = sum(image_f1(concepts[i], rows[i]) for i in concepts) / len(concepts)
        assert by_run[run]["metrics"]["concept_f1"] == pytest.approx(expected_f1, abs=1e-12)
    assert (by_run["a1"]["rank"], by_run["c1"]["rank"], by_run["b1"]["rank"]) == (1, 1, 3)
    assert by_run["c-bad"]["status"] == "invalid"

    topicto = ctx.store.get_json(ctx.layout.leaderboards("topicto", "v0001") + "leaderboard.json")
    assert [r["run"] for r in topicto["rows"]] == ["p1", "p2"]  # the lower error rate ranks first
    assert topicto["rows"][0]["metrics"]["picto_er"] < topicto["rows"][1]["metrics"]["picto_er"]

    captions = ctx.store.get_json(ctx.layout.leaderboards("caption-prediction", "v0001") + "leaderboard.json")
    assert captions["ranked_by"] == "caption_rouge1" and "caption_relevance was not computed" in captions["note"]
    assert all(r["metrics"]["caption_relevance"] is None and "not available" in r["not_computed"]["caption_relevance"] for r in captions["rows"])
    assert ",n/c," in ctx.store.get_bytes(ctx.layout.leaderboards("caption-prediction", "v0001") + "leaderboard.csv").decode()


def test_the_score_command_gives_a_participant_the_official_numbers(gans, tmp_path, capsys):
    from include.cli import main as cli
    from scoring_fixtures import CAMPAIGN_YAML

    version = scoring.new_version(gans, TASK, "runs collected", "asset")
    item = scoring.plan(gans, TASK, runs="team-b/b-one")[0]
    official = scoring.score_one(gans, TASK, version, item)
    (tmp_path / "gold").mkdir()
    (tmp_path / "gold" / "labels.csv").write_bytes(gans_gold()["labels.csv"])
    (tmp_path / "b-one").write_bytes(RUNS[("team-b", "b-one")])
    (tmp_path / "campaign.yaml").write_text(CAMPAIGN_YAML)
    code = cli(["score", "--task", TASK, "--run", str(tmp_path / "b-one"), "--gold", str(tmp_path / "gold"),
                "--config", str(tmp_path / "campaign.yaml"), "--per-item", str(tmp_path / "per_item.csv")])
    assert code == 0
    local = json.loads(capsys.readouterr().out)
    assert local["metrics"] == official["metrics"]  # exactly equal, not approximately
    stored = gans.store.get_bytes(scoring.run_prefix(gans, TASK, version, "team-b", "b-one") + "per_item.csv")
    assert (tmp_path / "per_item.csv").read_bytes() == stored


def test_broken_gold_or_metric_options_fail_the_task_with_a_clear_message(gans, tmp_path):
    version = scoring.new_version(gans, TASK, "runs collected", "asset")
    item = scoring.plan(gans, TASK, runs="team-a/a-best")[0]
    stage_gold(gans, TASK, {"labels.csv": b"identifier;value\n1;0\n"})
    with pytest.raises(scoring.ScoringError, match=r"gans-detection: the gold folder cannot be read: .*labels\.csv"):
        scoring.score_one(gans, TASK, version, item)

    (tmp_path / "gold").mkdir()
    (tmp_path / "gold" / "labels.csv").write_bytes(gans_gold()["labels.csv"])
    (tmp_path / "run.csv").write_bytes(RUNS[("team-a", "a-best")])
    task = gans.campaign.task(TASK).model_copy(update={"metric_options": {"gans_kappa": {"kappa_weights": "linear"}}})
    with pytest.raises(scoring.ScoringError, match=r"metric_options in the campaign file: unknown metric option\(s\) kappa_weights"):
        scoring.evaluate(task, tmp_path / "run.csv", tmp_path / "gold")
    assert scoring.evaluate(gans.campaign.task(TASK), tmp_path / "run.csv", tmp_path / "gold").results["gans_kappa"].value == pytest.approx(1.0)
