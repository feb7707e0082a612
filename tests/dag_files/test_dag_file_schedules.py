"""Each DAG file says when its DAGs run, and relies on Airflow's own registration of its DAGs.

A reader of ``dags/campaign_*.py`` sees ``schedule=``, ``start_date=`` and ``catchup=`` in the
``DAG(...)`` call itself (built by named helpers of ``clef_dag_support.runtime`` where the values are
computed), not hidden in a support module's ``**kwargs``. DAGs register themselves when their
``with DAG(...)`` block closes (``auto_register``), so no file writes them into ``globals()``;
``test_dag_integrity.py`` checks that every DAG still reaches the DagBag.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(DAGS.glob("campaign_*.py"))
WHEN = {"schedule", "start_date", "catchup"}


def dag_calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "DAG"]


def test_there_are_dag_files():
    assert len(DAG_FILES) >= 9, [p.name for p in DAG_FILES]


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_every_dag_call_names_its_schedule_start_and_catchup(path):
    calls = dag_calls(ast.parse(path.read_text(encoding="utf-8")))
    assert calls, f"{path.name} builds no DAG"
    for call in calls:
        named = {keyword.arg for keyword in call.keywords if keyword.arg}
        assert WHEN <= named, f"{path.name}:{call.lineno}: DAG(...) lacks {sorted(WHEN - named)}"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_no_dag_file_registers_dags_through_globals(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    uses = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "globals"]
    assert not uses, f"{path.name}: globals() on lines {uses}; `with DAG(...)` registers the DAG"
