"""Campaign discovery, DAG defaults, timetables and the per-task campaign context for the DAG files.

DAG files stay thin: each asks :func:`valid_campaigns` for the campaign files, builds one DAG per
campaign with :func:`dag_kwargs` (id, owner, tags, retries, timeouts, doc), and its tasks call the
domain functions in ``include.campaign`` with the context from :func:`campaign_context`. Each DAG
file writes its own ``schedule=``, ``start_date=`` and ``catchup=``, with the helpers
:func:`milestone_timetable` and :func:`first_moment` for the milestone DAGs, so a reader sees when
it runs there.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from functools import lru_cache
from pathlib import Path

import pendulum

from include.campaign.timeline import MilestoneEvent
from include.campaign.catalog import S3_CONN_ID, SMTP_CONN_ID, campaign_files, campaigns_dir  # noqa: F401 (re-exported)
from include.campaign.config import Campaign, ConfigError, load_campaign

PROJECT_ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)


@lru_cache(maxsize=64)
def _load(path: str, mtime: float) -> Campaign | ConfigError:
    try:
        return load_campaign(path)
    except ConfigError as error:
        return error


def load_all() -> list[tuple[Path, Campaign | ConfigError]]:
    return [(path, _load(str(path), path.stat().st_mtime)) for path in campaign_files()]


def valid_campaigns() -> list[tuple[Path, Campaign]]:
    """The campaign files that pass ``check``; broken ones get their own error DAG (campaign_file_check.py)."""
    return [(path, result) for path, result in load_all() if isinstance(result, Campaign)]


def retry_delay() -> dt.timedelta:
    return dt.timedelta(seconds=float(os.environ.get("CLEF_RETRY_DELAY_SECONDS", "120")))


# How long one try of a task may run before Airflow stops it (minutes). Every S3 and SMTP call has
# its own timeouts; this is the bound on a whole try, whatever it waits for. Scoring may run
# model-based metrics on CPU, so it has its own, longer bound.
DEFAULT_TASK_TIMEOUT_MINUTES = 60
DEFAULT_SCORING_TIMEOUT_MINUTES = 360


def _minutes(variable: str, default: float) -> float:
    value = os.environ.get(variable)
    try:
        minutes = float(value) if value else default
    except ValueError:
        log.warning("%s=%r is not a number of minutes; using %s", variable, value, default)
        return default
    return minutes if minutes > 0 else default


def task_timeout(stage: str | None = None) -> dt.timedelta:
    """The ``execution_timeout`` of every task of a stage (``CLEF_TASK_TIMEOUT_MINUTES``, ``CLEF_SCORING_TIMEOUT_MINUTES``)."""
    if stage == "scoring":
        return dt.timedelta(minutes=_minutes("CLEF_SCORING_TIMEOUT_MINUTES", DEFAULT_SCORING_TIMEOUT_MINUTES))
    return dt.timedelta(minutes=_minutes("CLEF_TASK_TIMEOUT_MINUTES", DEFAULT_TASK_TIMEOUT_MINUTES))


def task_defaults(owner: str, stage: str | None = None) -> dict:
    """default_args of every DAG here: owner, retries with backoff, and a bound on each try."""
    return {
        "owner": owner,
        "retries": 2,
        "retry_delay": retry_delay(),
        "retry_exponential_backoff": True,
        "execution_timeout": task_timeout(stage),
    }


def dag_kwargs(campaign: Campaign, stage: str, doc_md: str) -> dict:
    """What every campaign DAG shares: id, owner, tags, retries, a timeout per task try, and its doc."""
    return {
        "dag_id": f"{campaign.id}_{stage}",
        "description": f"{campaign.name}: {stage.replace('_', ' ')}",
        "doc_md": doc_md,
        "tags": ["clef-campaign", campaign.id, stage.replace("_", "-")],
        "default_args": task_defaults(f"{campaign.id}-organizers", stage),
        "max_active_runs": 1,
        "render_template_as_native_obj": True,
    }


def milestone_timetable(events: list[MilestoneEvent], description: str):
    """The ``schedule`` of a milestone DAG: fire once per distinct moment of ``events`` (UTC), nothing
    in between. With ``catchup=True`` a late deployment still fires the missed ones, in order."""
    # Import from airflow.timetables.events, not airflow.sdk: the latter breaks serialization in 3.3.2.
    from airflow.timetables.events import EventsTimetable

    moments = sorted({pendulum.instance(e.moment_utc) for e in events})
    return EventsTimetable(event_dates=moments, restrict_to_events=True, presorted=True, description=description)


def due_events(events: list[MilestoneEvent], context) -> list[MilestoneEvent]:
    """The milestones this DAG run serves (by its logical date)."""
    return events_at(events, logical_date_of(context))


def first_moment(events: list[MilestoneEvent]) -> pendulum.DateTime:
    """The ``start_date`` of a milestone DAG: its first milestone."""
    return pendulum.instance(min(e.moment_utc for e in events))


def events_at(events: list[MilestoneEvent], moment: dt.datetime | None) -> list[MilestoneEvent]:
    """The events due at a run's logical date (or, for a manual run with none, the latest past ones)."""
    if moment is None:
        moment = dt.datetime.now(dt.timezone.utc)
    due = [e for e in events if e.moment_utc == moment]
    if due:
        return due
    past = [e for e in events if e.moment_utc <= moment]
    if not past:
        return []
    latest = max(e.moment_utc for e in past)
    return [e for e in past if e.moment_utc == latest]


def milestone_table(events: list[MilestoneEvent]) -> str:
    """A Markdown table of the dates a DAG fires on, for its doc_md."""
    rows = ["| when (UTC) | milestone | tasks |", "|---|---|---|"]
    for event in events:
        rows.append(f"| {event.moment_utc:%Y-%m-%d %H:%M:%S} | {event.label} | {', '.join(event.task_ids)} |")
    return "\n".join(rows)


def campaign_context(campaign_file: str):
    """The campaign, the store and the mailer, from the ``clef_s3`` and ``smtp_default`` connections."""
    from airflow.sdk import BaseHook

    from include.campaign.catalog import context_from_connections

    # The deployment's settings (CLEF_MODEL_DIR: where the models worker finds the weights, ...) come
    # with the context (CampaignContext.settings).
    return context_from_connections(campaign_file, BaseHook.get_connection(S3_CONN_ID), BaseHook.get_connection(SMTP_CONN_ID))


def label_map_index(label: str) -> None:
    """Name a mapped task instance in the grid (``map_index_template="{{ label }}"``)."""
    from airflow.sdk import get_current_context

    get_current_context()["label"] = label


def asset(campaign_id: str, kind: str, *parts: str):
    """The Asset for a hand-off between stages: ``release/<task>/<split>`` or ``runs/<task>``."""
    from airflow.sdk import Asset

    path = "/".join((kind, *parts))
    return Asset(name=f"{campaign_id}/{path}", uri=f"clef://{campaign_id}/{path}")


def asset_alias(campaign_id: str, kind: str):
    from airflow.sdk import AssetAlias

    return AssetAlias(name=f"{campaign_id}/{kind}")


def logical_date_of(context) -> dt.datetime | None:
    value = context.get("logical_date")
    return value if value is None else pendulum.instance(value).in_timezone("UTC")
