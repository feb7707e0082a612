"""Drive a campaign's real DAGs in-process: ``dag.test()`` runs, asset-triggered runs, and organizer answers.

The integration tests and ``python -m devtools.simulate`` use this to replay a campaign in
milestone order against a migrated metadata database (SQLite is enough). Nothing is mocked:

- scheduled milestones run with ``dag.test(logical_date=<milestone>)``;
- asset-triggered runs (scoring after collection) are created by the scheduler's own code from the
  queued asset events, then executed with the same in-process task runner ``dag.test()`` uses;
- a human-in-the-loop approval is answered the way the UI's REST endpoint answers it.
"""
from __future__ import annotations

import datetime as dt
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        from airflow.dag_processing.dagbag import DagBag

        os.environ["CLEF_CAMPAIGNS_DIR"] = str(campaigns_dir)
        self.bag = DagBag(dag_folder=str(DAGS_FOLDER))
        if self.bag.import_errors:
            raise RuntimeError(f"DAG import errors: {self.bag.import_errors}")

    def dag(self, dag_id: str):
        return self.bag.dags[dag_id]

    def run(self, dag_id: str, logical_date: dt.datetime | None = None, conf: dict[str, Any] | None = None) -> RunResult:
        """One ``dag.test()`` run; a manual DAG gets ``conf`` as its form's values."""
        dag_run = self.dag(dag_id).test(logical_date=logical_date, run_conf=conf)
        return _result(dag_run)

    def run_with_approval(self, dag_id: str, logical_date: dt.datetime, approve: bool = True, user: str = "organizer") -> RunResult:
        """Run a DAG whose approval step waits for an organizer, answering it as the UI would."""
        answer = threading.Thread(target=answer_approvals, args=(dag_id, approve, user), daemon=True)
        answer.start()
        result = self.run(dag_id, logical_date)
        answer.join(timeout=5)
        return result

    def run_asset_triggered(self, dag_id: str) -> RunResult | None:
        """Create the DAG's asset-triggered run from queued asset events (the scheduler's code) and run it."""
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.types import DagRunType

        with create_session() as session:
            before = {r.run_id for r in session.query(DagRun).filter(DagRun.dag_id == dag_id)}
        _create_asset_triggered_runs()
        with create_session() as session:
            created = [
                r for r in session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_type == DagRunType.ASSET_TRIGGERED)
                if r.run_id not in before
            ]
            if not created:
                return None
            run_id = created[0].run_id
        return _result(_execute_run(self.dag(dag_id), run_id))


def _create_asset_triggered_runs() -> None:
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.utils.session import create_session
    from airflow.utils.sqlalchemy import prohibit_commit

    runner = SchedulerJobRunner(job=Job())
    with create_session() as session:
        with prohibit_commit(session) as guard:
            runner._create_dagruns_for_dags(guard, session)
            guard.commit()


def _execute_run(dag, run_id: str):
    """Run every task of an existing DAG run in this process, as ``dag.test()`` does for its own runs."""
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    with create_session() as session:
        dag_run = session.query(DagRun).filter(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id).one()
        dag_run.state = DagRunState.RUNNING
        session.commit()
        from airflow.models.dagbag import DBDagBag

        dag_run.dag = DBDagBag().get_dag_for_run(dag_run, session=session)
        while dag_run.state == DagRunState.RUNNING:
            session.expire_all()
            schedulable, _ = dag_run.update_state(session=session)
            for ti in schedulable:
                if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                    ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            scheduled = [ti for ti in dag_run.get_task_instances(session=session) if ti.state == TaskInstanceState.SCHEDULED]
            if not scheduled:
                time.sleep(0.5)
            for ti in scheduled:
                try:
                    _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
                except Exception:  # the task's own failure is recorded on its instance, as in dag.test()
                    pass
        return dag_run


def answer_approvals(dag_id: str, approve: bool, user: str, timeout: float = 120.0) -> bool:
    """Wait for a task of ``dag_id`` awaiting human input and answer it like the HITL REST endpoint."""
    from airflow.models.hitl import HITLDetail, HITLUser
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with create_session() as session:
            waiting = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.state.in_([TaskInstanceState.AWAITING_INPUT, TaskInstanceState.DEFERRED])).all()
            for ti in waiting:
                detail = session.query(HITLDetail).filter(HITLDetail.ti_id == ti.id).one_or_none()
                if detail is None or detail.response_received:
                    continue
                _respond(session, ti, detail, "Approve" if approve else "Reject", HITLUser(id=user, name=user))
                return True
        time.sleep(0.5)
    return False


def _respond(session, ti, detail, option: str, user) -> None:
    """What ``PATCH /api/v2/hitlDetails/...`` does: record the answer, then resume the parked task."""
    from airflow.models.trigger import handle_event_submit
    from airflow.sdk import timezone
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.state import TaskInstanceState

    detail.responded_by = user
    detail.responded_at = timezone.utcnow()
    detail.chosen_options = [option]
    detail.params_input = {}
    session.add(detail)
    if ti.state in (TaskInstanceState.AWAITING_INPUT, TaskInstanceState.DEFERRED):
        handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session)
    session.commit()


def _result(dag_run) -> RunResult:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    dag_id, run_id = dag_run.dag_id, dag_run.run_id
    with create_session() as session:
        fresh = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one()
        states = {}
        for ti in fresh.get_task_instances(session=session):
            name = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            states[name] = str(ti.state)
        return RunResult(dag_id, run_id, str(fresh.state), states)
