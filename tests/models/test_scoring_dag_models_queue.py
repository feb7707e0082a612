"""Caption prediction and image synthesis scored through the real scoring DAG with a model directory.

A two-task copy of ImageCLEF 2025 is replayed with the demo data; ``CLEF_MODEL_DIR`` points at the
test model directory (the shipped MiniLM and tiny random models). The CPU metrics are scored by
``score_run`` on the default queue, the model metrics by ``score_run_models`` task instances whose queue
is ``models``; the leaderboards join both and rank by relevance and by fidelity.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.airflow
ROOT = Path(__file__).resolve().parents[2]
TASKS = ("caption-prediction", "vqa-gi-synthesis")
CAMPAIGN = "imageclef2025"


@pytest.fixture(scope="module")
def world(s3_endpoint, smtp, airflow_home, tmp_path_factory, model_dir):
    from devtools.campaign_replay import Simulation
    from include.campaign.context import CampaignContext
    from include.campaign.mail import SmtpSettings
    from include.campaign.store import ObjectStore, S3Settings

    recorder, port = smtp
    recorder.clear()
    saved = {k: os.environ.get(k) for k in ("CLEF_BUCKET", "CLEF_RETRY_DELAY_SECONDS", "CLEF_MODEL_DIR")}
    os.environ.update({"CLEF_BUCKET": "clef-models-replay", "CLEF_RETRY_DELAY_SECONDS": "1", "CLEF_MODEL_DIR": str(model_dir)})
    raw = yaml.safe_load((ROOT / "include" / "campaigns" / "imageclef2025.yaml").read_text())
    raw["tasks"] = [t for t in raw["tasks"] if t["id"] in TASKS]
    workdir = tmp_path_factory.mktemp("models-replay")
    source = workdir / "two-tasks.yaml"
    source.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    store = ObjectStore(S3Settings(bucket="clef-models-replay", endpoint_url=s3_endpoint, access_key_id="k", secret_access_key="s"))
    smtp_settings = SmtpSettings(host="127.0.0.1", port=port, timeout=5)
    simulation = Simulation(source, workdir, lambda campaign: CampaignContext(campaign, store, smtp_settings),
                            step=2.0, say=lambda line: None)
    try:
        report = simulation.run()
        yield {"report": report, "store": store, "campaign_id": simulation.campaign.id}
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def test_every_dag_run_succeeded(world):
    assert [(r.dag_id, r.failed_tasks()) for r in world["report"].failed] == []


def test_model_metrics_ran_on_the_models_queue(world):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    # Only this replay's DAG runs: the metadata database is shared by the test session, and other tests
    # replay the same campaign id, whose scoring runs of tasks without a model part map score_run_models
    # over nothing (skipped).
    scoring = f"{world['campaign_id']}_scoring"
    own_runs = {run.run_id for run in world["report"].runs if run.dag_id == scoring}
    with create_session() as session:
        rows = session.query(TaskInstance.task_id, TaskInstance.queue, TaskInstance.state).filter(
            TaskInstance.dag_id == scoring, TaskInstance.run_id.in_(own_runs)).all()
    model_rows = [row for row in rows if row.task_id == "score_run_models"]
    cpu_rows = [row for row in rows if row.task_id == "score_run"]
    assert model_rows and all(row.queue == "models" and row.state == "success" for row in model_rows)
    assert cpu_rows and all(row.queue == "default" for row in cpu_rows)
    collected = sum(len(world["report"].manifests[t]["collected"]) for t in TASKS)
    assert len(model_rows) < collected  # many runs per models instance (one model load per batch)


def test_both_tasks_rank_by_their_model_based_primary_metric(world):
    boards = world["report"].leaderboards
    assert boards["caption-prediction"]["ranked_by"] == "caption_relevance"
    assert boards["vqa-gi-synthesis"]["ranked_by"] == "synthesis_fidelity"
    for task in TASKS:
        ranked = [row for row in boards[task]["rows"] if row["status"] == "ranked"]
        assert ranked and all(row["metrics"][boards[task]["ranked_by"]] is not None for row in ranked), task
    row = next(r for r in boards["caption-prediction"]["rows"] if r["status"] == "ranked")
    assert row["metrics"]["caption_rouge1"] is not None and row["metrics"]["caption_bertscore"] is not None
    assert row["metrics"]["caption_factuality"] is not None  # the tiny MedCAT pack and AlignScore


def test_model_outputs_are_stored_next_to_the_cpu_ones(world):
    store, campaign = world["store"], world["campaign_id"]
    evaluation = store.get_json(f"{campaign}/evaluations/caption-prediction/v0001/evaluation.json")
    run = next(r for r in evaluation["runs"] if r["verdict"] == "valid")
    models = store.get_json(run["files"] + "models/metrics.json")
    assert models["metrics"]["caption_bertscore"]["value"] == run["metrics"]["caption_bertscore"]
    assert 0.0 <= models["metrics"]["caption_umls_f1"]["value"] <= 1.0
    assert "not available" in models["metrics"]["caption_bleurt"]["not_computed"]
    assert "caption_rouge1" in store.get_bytes(run["files"] + "per_item.csv").decode().splitlines()[0]
