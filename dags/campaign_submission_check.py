"""Submission-check DAGs: a receipt and a format check for every new upload, within minutes, during each test phase."""
from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task
from airflow.timetables.trigger import DeltaTriggerTimetable
from dags.clef_dag_support.runtime import campaign_context, dag_kwargs, label_map_index, valid_campaigns


def build_submission_check_dag(campaign_file: str, campaign) -> DAG:
    every = campaign.submission_check_every_minutes
    starts = min(campaign.milestone_time("test_data_release", t) for t in campaign.tasks)
    # One more period after the last deadline, so uploads of its final minutes get their receipt.
    ends = max(campaign.milestone_time("run_deadline", t) for t in campaign.tasks) + dt.timedelta(minutes=every)
    doc = f"""### {campaign.name}: submission check

Every {every} minutes (`submission_check_every_minutes` in the campaign file) from {starts:%Y-%m-%d %H:%M %Z}
(first test release) to {ends:%Y-%m-%d %H:%M %Z} (last run deadline, plus one period), for each task in its
test phase: every upload version under `submissions/<task>/` without a receipt gets one under
`receipts/<task>/<team>/<run>/` (store time, size, sha256, slot, format verdict), and the team one e-mail:
received, valid, or the first problems with their lines. Versions over the task's `max_bytes` are refused
unread. Validation uses the public test inputs only (`include/campaign/submission_check.py`).
Collection at the deadline (`{campaign.id}_run_collection`) still decides which runs count.
"""
    with DAG(
        schedule=DeltaTriggerTimetable(dt.timedelta(minutes=every)),
        start_date=starts,
        end_date=ends,
        catchup=False,
        **dag_kwargs(campaign, "submission_check", doc),
    ) as dag:

        @task(task_id="tasks_in_test_phase")
        def tasks_in_test_phase() -> list[str]:
            now = dt.datetime.now(dt.timezone.utc)
            grace = dt.timedelta(minutes=every)
            return [t.id for t in campaign.tasks
                    if campaign.milestone_time("test_data_release", t.id) <= now <= campaign.milestone_time("run_deadline", t.id) + grace]

        @task(task_id="check_uploads", map_index_template="{{ label }}")
        def check_uploads(campaign_task: str) -> dict:
            from include.campaign import submission_check

            label_map_index(campaign_task)
            return submission_check.check(campaign_context(campaign_file), campaign_task)

        check_uploads.expand(campaign_task=tasks_in_test_phase())
    return dag


# Each DAG registers itself as its `with DAG(...)` block closes (Airflow's auto_register).
for _path, _campaign in valid_campaigns():
    build_submission_check_dag(str(_path), _campaign)
