"""Drive a campaign's real DAGs in-process: ``dag.test()`` runs, asset-triggered runs, and organizer answers.

The integration tests and ``python -m devtools.simulate`` use this to replay a campaign in
milestone order against a migrated metadata database (SQLite is enough). Nothing is mocked:

- scheduled milestones run with ``dag.test(logical_date=<milestone>)``;
- asset-triggered runs (scoring after collection) are created by the scheduler's own code from the
  queued asset events, then executed with the same in-process task runner ``dag.test()`` uses;
- a human-in-the-loop approval is answered the way the UI's REST endpoint answers it.

Every call into Airflow's internals that this takes is in :mod:`devtools.airflow_internals`; this
module only decides what to run and when.
"""
from __future__ import annotations

import datetime as dt
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools import airflow_internals

DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"


@dataclass(frozen=True)
class RunResult:
    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str]  # "task_id" or "task_id[map_index]" -> state

    @property
    def ok(self) -> bool:
        return self.state == "success"

    def failed_tasks(self) -> list[str]:
        return [name for name, state in self.task_states.items() if state in ("failed", "upstream_failed")]


class DagDriver:
    """Load the DAGs built from one campaigns folder and run them."""

    def __init__(self, campaigns_dir: str | Path):
        os.environ["CLEF_CAMPAIGNS_DIR"] = str(campaigns_dir)
        self.bag = airflow_internals.load_dags(DAGS_FOLDER)

    def dag(self, dag_id: str):
        return self.bag.dags[dag_id]

    def run(self, dag_id: str, logical_date: dt.datetime | None = None, conf: dict[str, Any] | None = None) -> RunResult:
        """One ``dag.test()`` run; a manual DAG gets ``conf`` as its form's values."""
        dag_run = self.dag(dag_id).test(logical_date=logical_date, run_conf=conf)
        return _result(dag_run.dag_id, dag_run.run_id)

    def run_with_approval(self, dag_id: str, logical_date: dt.datetime, approve: bool = True, user: str = "organizer") -> RunResult:
        """Run a DAG whose approval step waits for an organizer, answering it as the UI would."""
        answer = threading.Thread(target=answer_approvals, args=(dag_id, approve, user), daemon=True)
        answer.start()
        result = self.run(dag_id, logical_date)
        answer.join(timeout=5)
        return result

    def run_asset_triggered(self, dag_id: str) -> RunResult | None:
        """Create the DAG's asset-triggered run from queued asset events (the scheduler's code) and run it."""
        before = set(airflow_internals.run_ids(dag_id))
        airflow_internals.create_asset_triggered_runs()
        created = [run_id for run_id in airflow_internals.run_ids(dag_id, asset_triggered_only=True) if run_id not in before]
        if not created:
            return None
        airflow_internals.execute_run(self.dag(dag_id), created[0])
        return _result(dag_id, created[0])


def answer_approvals(dag_id: str, approve: bool, user: str, timeout: float = 120.0) -> bool:
    """Wait (at most ``timeout`` seconds) for a task of ``dag_id`` awaiting human input and answer it
    like the HITL REST endpoint; False when none came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if airflow_internals.answer_waiting_approval(dag_id, "Approve" if approve else "Reject", user):
            return True
        time.sleep(0.5)
    return False


def _result(dag_id: str, run_id: str) -> RunResult:
    state, task_states = airflow_internals.run_states(dag_id, run_id)
    return RunResult(dag_id, run_id, state, task_states)
