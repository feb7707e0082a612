"""What the scoring path asks of the store: each object read once per task, nothing just written read back.

The requests are counted on the real client (botocore's ``before-parameter-build`` event) against the real moto
server, so a loop back to the store for something the caller already knows fails these tests.
"""
from __future__ import annotations

from collections import Counter

import pytest

from include.campaign import evaluation, results
from include.campaign.context import Settings
from scoring_fixtures import GANS_GOLD, collect, gans_gold, gans_run, stage_gold

TASK = "gans-detection"
RUNS = {(f"team-{t}", f"run-{r}"): gans_run({**GANS_GOLD, "8": r % 2}) for t in "abc" for r in (1, 2)}


class Requests:
    """Every S3 request the store's client makes while counting: (operation, key)."""

    def __init__(self, client):
        self.calls: list[tuple[str, str]] = []
        self.counting = False
        client.meta.events.register("before-parameter-build.s3", self._seen)

    def _seen(self, model, params, **_):
        if self.counting:
            self.calls.append((model.name, params.get("Key") or params.get("Prefix") or ""))

    def __enter__(self):
        self.calls.clear()
        self.counting = True
        return self

    def __exit__(self, *exc):
        self.counting = False

    def of(self, operation: str, ending: str = "", skip: str | None = None) -> int:
        """Requests of ``operation`` on keys ending with ``ending`` (not those starting with ``skip``)."""
        return sum(1 for name, key in self.calls if name == operation and key.endswith(ending) and not (skip and key.startswith(skip)))

    @property
    def operations(self) -> Counter:
        return Counter(name for name, _ in self.calls)


@pytest.fixture
def planned(ctx):
    stage_gold(ctx, TASK, gans_gold())
    collect(ctx, TASK, RUNS)
    requests = Requests(ctx.store.client)
    version = evaluation.new_version(ctx, TASK, "runs collected", "asset")
    with requests:
        items = evaluation.plan(ctx, TASK, manifest_key=ctx.layout.collection_manifest(TASK))
    return ctx, version, [{**item, "task": TASK, "version": version} for item in items], requests


def test_planning_reads_the_manifest_once_with_no_head(planned):
    ctx, _, items, requests = planned
    assert len(items) == len(RUNS)
    assert requests.of("GetObject", "manifest.json") == 1 and requests.of("HeadObject") == 0


def test_a_batch_checks_its_version_once_then_one_get_and_its_writes_per_run(planned):
    ctx, version, items, requests = planned
    with requests:
        summaries = evaluation.score_batch(ctx, items)
    assert [(s["team"], s["run"], s["task"], s["version"]) for s in summaries] == [(i["team"], i["run"], TASK, version) for i in items]
    runs, gold = len(items), ctx.layout.gold(TASK)  # the gold is downloaded once per process and content, if at all
    assert requests.of("HeadObject", skip=gold) == 1  # is the version complete? once for the batch
    assert requests.of("HeadObject", "lineage.json") == 1
    assert requests.of("GetObject", "version.json") <= 1  # the version exists (once per process)
    assert requests.of("GetObject", skip=gold) - requests.of("GetObject", "version.json") == runs  # each run, once
    assert requests.of("PutObject") == 4 * runs  # report.json, report.txt, metrics.json, per_item.csv


def test_finalizing_reads_the_manifest_once_and_reads_back_nothing_it_wrote(planned):
    ctx, version, items, requests = planned
    summaries = evaluation.score_batch(ctx, items)
    with requests:
        outcome, records = evaluation.finalize_with_records(ctx, TASK, version, summaries, "runs collected", "asset",
                                                           planned=items, manifest_key=ctx.layout.collection_manifest(TASK))
    assert requests.of("GetObject", "manifest.json") == 1 and requests.of("HeadObject", "manifest.json") == 0
    assert requests.of("HeadObject", "per_item.csv") == 0
    assert requests.of("GetObject", "per_item.csv") == outcome["ranked"]
    for written in ("leaderboard.json", "evaluation.json", "diff.json"):
        assert requests.of("GetObject", written) == 0, written
    assert records["leaderboard"] == evaluation.read_leaderboard(ctx, TASK, version)
    assert records["evaluation"]["runs"] == evaluation.read_evaluation(ctx, TASK, version)["runs"]
    assert outcome == evaluation.finalize(ctx, TASK, version, summaries, "runs collected", "asset")  # complete: as it was


def test_rescore_notices_before_publication_cost_one_read(planned):
    ctx, version, items, requests = planned
    _, records = evaluation.finalize_with_records(ctx, TASK, version, evaluation.score_batch(ctx, items), "runs collected", "asset")
    with requests:
        notified = results.notify_rescore(ctx, TASK, version, "runs collected", current=records)
    assert notified["published"] is False
    assert requests.operations == Counter({"GetObject": 1})  # the publication record, absent


def test_a_manifest_key_outside_the_task_is_refused(planned):
    ctx, _, _, _ = planned
    with pytest.raises(evaluation.ScoringError, match="is not a collection manifest of this task"):
        evaluation.plan(ctx, TASK, manifest_key=ctx.layout.collection_manifest("topicto"))


def test_the_deployment_settings_come_from_the_environment_once_in_the_context():
    settings = Settings.from_env({"CLEF_PUBLIC_BASE_URL": "https://results.example.org", "CLEF_CODE_VERSION": "1.2.3",
                                  "CLEF_MODEL_DIR": "/models", "CLEF_SCORING_MAX_INSTANCES": "30"})
    assert (settings.public_base_url, settings.code_version, settings.model_dir, settings.scoring_max_instances) == (
        "https://results.example.org", "1.2.3", "/models", "30")
    assert Settings.from_env({}) == Settings()


def test_the_model_directory_reaches_only_the_metrics_that_read_it(campaign):
    captions, gans = campaign.task("caption-prediction"), campaign.task(TASK)
    assert evaluation.metric_options(captions, "/models")["model_dir"] == "/models"
    assert "model_dir" not in evaluation.metric_options(gans, "/models")  # the task's metrics would refuse it
    assert "model_dir" not in evaluation.metric_options(captions, None)
