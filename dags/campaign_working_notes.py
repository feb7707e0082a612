"""Working-notes DAGs: reminders before the working-notes deadline, on notification, and before camera-ready."""
from __future__ import annotations

from airflow.sdk import DAG, task
from dags.clef_dag_support.runtime import (
    campaign_context,
    dag_kwargs,
    due_events,
    first_moment,
    milestone_table,
    milestone_timetable,
    valid_campaigns,
)

from include.campaign.timeline import reminder_events


def build_working_notes_dag(campaign_file: str, campaign) -> DAG:
    events = reminder_events(campaign)
    settings = campaign.reminders
    doc = f"""### {campaign.name}: working-notes reminders

E-mails every team with at least one collected run, naming its tasks and the dates:
{', '.join(str(d) for d in settings.working_notes_days_before)} day(s) before the working-notes deadline,
{'on the notification date, ' if settings.on_notification else ''}and
{', '.join(str(d) for d in settings.camera_ready_days_before)} day(s) before camera-ready (offsets set under
`reminders:` in the campaign file). Each team gets each reminder once, however often this runs.

Fires on:

{milestone_table(events)}
"""
    with DAG(
        schedule=milestone_timetable(events, "working-notes reminders"),
        start_date=first_moment(events),
        catchup=True,  # a late deployment still fires the missed milestones, in order
        **dag_kwargs(campaign, "working_notes", doc),
    ) as dag:

        @task(task_id="send_reminders")
        def send_reminders(**context) -> list[dict]:
            from include.campaign import reminders

            ctx = campaign_context(campaign_file)
            return [reminders.send(ctx, event.milestone, list(event.task_ids)) for event in due_events(events, context)]

        send_reminders()
    return dag


# Each DAG registers itself as its `with DAG(...)` block closes (Airflow's auto_register).
for _path, _campaign in valid_campaigns():
    build_working_notes_dag(str(_path), _campaign)
