"""Every call the dev wing makes into Airflow's internals (anything outside the public ``airflow.sdk``).

The in-process replay (:mod:`devtools.dag_driver`) does what the scheduler, ``dag.test()`` and the
UI's human-in-the-loop endpoint do inside Airflow, and Airflow publishes none of it: creating the
asset-triggered runs is ``SchedulerJobRunner._create_dagruns_for_dags``, running a task in-process is
``airflow.sdk.definitions.dag._run_task``, answering an approval is what ``PATCH
/api/v2/hitlDetails/...`` does with ``HITLDetail`` and ``handle_event_submit``. They can change in any
Airflow release, so they live here only, and :data:`CALLABLES_RELIED_ON` and
:data:`ATTRIBUTES_RELIED_ON` list each one with the parameters or attributes used;
``tests/dev_wing/test_airflow_internals.py`` checks the installed Airflow against both lists (and
that this module imports nothing from Airflow the lists do not name), so an upgrade that renames or
re-signs one fails there, by name, rather than deep in a replay.

Every import of Airflow is inside a function: importing this module never configures Airflow, so the
caller can set ``AIRFLOW_HOME`` and the database first.
"""
from __future__ import annotations

import time
from pathlib import Path

# "module:qualified.name" -> the parameters this module passes (by name or position)
CALLABLES_RELIED_ON: dict[str, tuple[str, ...]] = {
    "airflow.dag_processing.dagbag:DagBag": ("dag_folder",),
    "airflow.jobs.job:Job": (),
    "airflow.jobs.scheduler_job_runner:SchedulerJobRunner": ("job",),
    "airflow.jobs.scheduler_job_runner:SchedulerJobRunner._create_dagruns_for_dags": ("guard", "session"),
    "airflow.utils.sqlalchemy:prohibit_commit": ("session",),
    "airflow.utils.session:create_session": (),
    "airflow.sdk.definitions.dag:_run_task": ("ti", "task", "run_triggerer"),
    "airflow.models.dagbag:DBDagBag": (),
    "airflow.models.dagbag:DBDagBag.get_dag_for_run": ("dag_run", "session"),
    "airflow.models.dagrun:DagRun.update_state": ("session",),
    "airflow.models.dagrun:DagRun.get_task_instances": ("session",),
    "airflow.models.trigger:handle_event_submit": ("event", "task_instance", "session"),
    "airflow.models.hitl:HITLDetail.as_resume_event_payload": (),
    "airflow.triggers.base:TriggerEvent": ("payload",),
    "airflow.sdk.execution_time.supervisor:in_process_api_server": (),
}
# "module:ClassName" -> the attributes (columns, enum members, keys) this module reads or sets
ATTRIBUTES_RELIED_ON: dict[str, tuple[str, ...]] = {
    "airflow.models.dagrun:DagRun": ("dag_id", "run_id", "run_type", "state", "dag"),
    "airflow.models.taskinstance:TaskInstance": ("id", "dag_id", "task_id", "map_index", "state", "try_number"),
    "airflow.models.hitl:HITLDetail": ("ti_id", "response_received", "responded_by", "responded_at", "chosen_options", "params_input"),
    "airflow.models.hitl:HITLUser": ("id", "name"),
    "airflow.utils.state:DagRunState": ("RUNNING",),
    "airflow.utils.state:TaskInstanceState": ("SCHEDULED", "UP_FOR_RESCHEDULE", "AWAITING_INPUT", "DEFERRED"),
    "airflow.utils.types:DagRunType": ("ASSET_TRIGGERED",),
    "airflow.api_fastapi.execution_api.app:InProcessExecutionAPI": ("transport",),
}


def load_dags(folder: Path):
    """The DagBag of ``folder``, parsed in this process; an import error of any DAG file raises."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(folder))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag


def run_ids(dag_id: str, asset_triggered_only: bool = False) -> list[str]:
    """The run ids of ``dag_id`` in the metadata database, optionally only its asset-triggered runs."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunType

    with create_session() as session:
        query = session.query(DagRun).filter(DagRun.dag_id == dag_id)
        if asset_triggered_only:
            query = query.filter(DagRun.run_type == DagRunType.ASSET_TRIGGERED)
        return [run.run_id for run in query]


def create_asset_triggered_runs() -> None:
    """Turn queued asset events into DAG runs, with the scheduler's own code for it."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.utils.session import create_session
    from airflow.utils.sqlalchemy import prohibit_commit

    runner = SchedulerJobRunner(job=Job())
    with create_session() as session:
        with prohibit_commit(session) as guard:
            runner._create_dagruns_for_dags(guard, session)
            guard.commit()


def start_in_process_execution_api() -> None:
    """Start the execution API that ``dag.test()`` runs tasks against, in this process, and have it answer
    one request. Its first request sets up its versioned routes (Cadwyn), about 10 s here, once per
    process; a benchmark starts it before its clock, as a deployment's api-server is up before any DAG run."""
    import httpx

    from airflow.sdk.execution_time.supervisor import in_process_api_server

    client = httpx.Client(transport=in_process_api_server().transport, base_url="http://in-process.invalid./")
    client.get("/health").raise_for_status()  # not closed: the transport is the one dag.test() goes on using


def execute_run(dag, run_id: str, poll_seconds: float = 0.5, timeout_seconds: float = 3600.0) -> None:
    """Run every task of an existing DAG run in this process, as ``dag.test()`` does for its own runs;
    :class:`TimeoutError` when the run is still running after ``timeout_seconds``."""
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    with create_session() as session:
        dag_run = session.query(DagRun).filter(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id).one()
        dag_run.state = DagRunState.RUNNING
        session.commit()
        dag_run.dag = DBDagBag().get_dag_for_run(dag_run, session=session)
        deadline = time.monotonic() + timeout_seconds
        while dag_run.state == DagRunState.RUNNING:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag.dag_id} {run_id}: still running after {timeout_seconds:.0f} s")
            if not _run_schedulable_tasks(dag, dag_run, session):
                time.sleep(poll_seconds)


def _run_schedulable_tasks(dag, dag_run, session) -> int:
    """One pass of the scheduler's loop for ``dag_run``: schedule what may run, run it here; how many ran."""
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.state import TaskInstanceState

    session.expire_all()
    schedulable, _ = dag_run.update_state(session=session)
    for ti in schedulable:
        if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
            ti.try_number += 1
        ti.state = TaskInstanceState.SCHEDULED
    session.commit()
    scheduled = [ti for ti in dag_run.get_task_instances(session=session) if ti.state == TaskInstanceState.SCHEDULED]
    for ti in scheduled:
        try:
            _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
        except Exception:  # the task's own failure is recorded on its instance, as in dag.test()
            pass
    return len(scheduled)


def answer_waiting_approval(dag_id: str, option: str, user: str) -> bool:
    """Answer the first task of ``dag_id`` awaiting human input with ``option``, as the UI's REST
    endpoint does (record the answer, resume the parked task); False when none waits yet."""
    from airflow.models.hitl import HITLDetail, HITLUser
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    parked = [TaskInstanceState.AWAITING_INPUT, TaskInstanceState.DEFERRED]
    with create_session() as session:
        for ti in session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.state.in_(parked)).all():
            detail = session.query(HITLDetail).filter(HITLDetail.ti_id == ti.id).one_or_none()
            if detail is not None and not detail.response_received:
                _respond(session, ti, detail, option, HITLUser(id=user, name=user))
                return True
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


def run_states(dag_id: str, run_id: str) -> tuple[str, dict[str, str]]:
    """The DAG run's state and each task's ("task_id" or "task_id[map_index]" -> state), read afresh."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        fresh = session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).one()
        states = {}
        for ti in fresh.get_task_instances(session=session):
            name = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            states[name] = str(ti.state)
        return str(fresh.state), states
