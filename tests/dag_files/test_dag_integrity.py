"""Every DAG that ``dags/`` produces imports, serializes, and explains itself in the UI."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("registration", "registration_intake", "agreement_approval", "data_release", "submission_check", "run_collection", "scoring", "results", "working_notes", "sign_in_revocation")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_every_stage_dag_exists_for_imageclef2025(dagbag):
    for stage in STAGES:
        assert f"imageclef2025_{stage}" in dagbag.dags, stage


def test_every_dag_serializes(dagbag):
    from airflow.serialization.serialized_objects import DagSerialization

    assert dagbag.dags
    for dag_id, dag in dagbag.dags.items():
        DagSerialization.to_dict(dag)  # raises on anything the scheduler could not store


def test_every_dag_explains_itself(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert re.fullmatch(r"[a-z0-9_]+", dag_id), dag_id
        assert dag.doc_md and len(dag.doc_md) > 80, dag_id
        assert dag.tags and "clef-campaign" in dag.tags, dag_id
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", (dag_id, task.task_id)
            assert task.retries >= 2, (dag_id, task.task_id)
            assert task.execution_timeout is not None and task.execution_timeout.total_seconds() > 0, (dag_id, task.task_id)
            if hasattr(task, "response_timeout"):  # a human-in-the-loop wait is bounded on its own
                assert task.response_timeout is not None, (dag_id, task.task_id)
            assert re.fullmatch(r"[a-z][a-z0-9_]+", task.task_id), (dag_id, task.task_id)


def test_manual_dags_explain_their_params(dagbag):
    for dag_id, dag in dagbag.dags.items():
        for name, param in dag.params.items():
            assert param.description, (dag_id, name)


def test_milestone_dags_catch_up_and_list_their_dates(dagbag):
    dag = dagbag.dags["imageclef2025_data_release"]
    assert dag.catchup is True
    assert "2025-01-24 00:00:00" in dag.doc_md and "2025-03-14 00:00:00" in dag.doc_md


def test_a_broken_campaign_file_becomes_an_error_dag(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    shutil.copy(ROOT / "include" / "campaigns" / "imageclef2025.yaml", campaigns / "imageclef2025.yaml")
    text = (ROOT / "include" / "campaigns" / "imageclef2025.yaml").read_text().replace("id: imageclef2025", "id: brokenlab").replace("registration_opens: 2024-12-20", "registration_opens: 2025-12-20")
    (campaigns / "brokenlab.yaml").write_text(text)
    monkeypatch.setenv("CLEF_CAMPAIGNS_DIR", str(campaigns))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert "imageclef2025_registration" in bag.dags
    assert not any(d.startswith("brokenlab_") and not d.endswith("_campaign_file_error") for d in bag.dags)
    error_dag = bag.dags["brokenlab_campaign_file_error"]
    assert all(task.execution_timeout is not None for task in error_dag.tasks)
    assert "registration_closes" in error_dag.doc_md and "2025-12-20" in error_dag.doc_md
