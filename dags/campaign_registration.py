"""Registration DAGs for every campaign file: opening and closing, the 15-minute intake, and agreement approvals."""
from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, task
from airflow.timetables.trigger import DeltaTriggerTimetable
from dags.clef_dag_support.runtime import (
    campaign_context,
    dag_kwargs,
    due_events,
    first_moment,
    label_map_index,
    milestone_table,
    milestone_timetable,
    valid_campaigns,
)

from include.campaign.timeline import milestone_events

STAGE_MILESTONES = ("registration_opens", "registration_closes")


def build_registration_dag(campaign_file: str, campaign) -> DAG:
    events = milestone_events(campaign, STAGE_MILESTONES)
    doc = f"""### {campaign.name}: registration

**Opening** e-mails the announcement to the campaign's list and the organizers.
**Closing** runs a last intake, freezes the team list (a CSV snapshot with its sha256 under
`registrations/snapshots/`) and e-mails the organizers a summary per task.
Between the two, `{campaign.id}_registration_intake` accepts registrations every 15 minutes.

Fires on (a late deployment still fires the missed dates, in order):

{milestone_table(events)}
"""
    with DAG(
        schedule=milestone_timetable(events, "registration opens and closes"),
        start_date=first_moment(events),
        catchup=True,  # a late deployment still fires the missed milestones, in order
        **dag_kwargs(campaign, "registration", doc),
    ) as dag:

        @task.branch(task_id="which_milestone")
        def which_milestone(**context) -> list[str]:
            due = {event.milestone for event in due_events(events, context)}
            return [step for milestone, step in (("registration_opens", "announce_opening"), ("registration_closes", "close_registration")) if milestone in due]

        @task(task_id="announce_opening")
        def announce_opening(**context) -> dict:
            from include.campaign import registration

            due = [e for e in due_events(events, context) if e.milestone == "registration_opens"]
            task_ids = sorted({t for e in due for t in e.task_ids})
            return registration.announce_opening(campaign_context(campaign_file), task_ids)

        @task(task_id="close_registration")
        def close_registration(**context) -> dict:
            from include.campaign import registration

            due = [e for e in due_events(events, context) if e.milestone == "registration_closes"]
            task_ids = sorted({t for e in due for t in e.task_ids})
            return registration.close(campaign_context(campaign_file), task_ids)

        which_milestone() >> [announce_opening(), close_registration()]
    return dag


def build_intake_dag(campaign_file: str, campaign) -> DAG:
    opens = min(campaign.milestone_time("registration_opens", t) for t in campaign.tasks)
    closes = max(campaign.milestone_time("registration_closes", t) for t in campaign.tasks)
    # Keep running after registration closes, so late registrations are answered and upload links
    # (which S3 lets live 7 days at most) are renewed until the last run deadline.
    last_deadline = max(campaign.milestone_time("run_deadline", t) for t in campaign.tasks)
    doc = f"""### {campaign.name}: registration intake

Every {campaign.intake_every_minutes} minutes (`intake_every_minutes` in the campaign file) from {opens:%Y-%m-%d %H:%M %Z} (registration opens) to {last_deadline:%Y-%m-%d %H:%M %Z}
(last run deadline; registration closes {closes:%Y-%m-%d %H:%M %Z}):
- validates each new registration under `registrations/inbox/`, gives the team a stable id, records it
  under `registrations/teams/`, and e-mails a confirmation (tasks, dates, next steps). Registrations
  that come too early, too late or malformed are moved to `registrations/rejected/` with the reason
  and answered. Teams that register after a data release get that release's links (once their
  agreement is approved, where the task needs one: see `{campaign.id}_agreement_approval`);
- between a task's test release and its deadline, e-mails fresh upload links before the previous ones
  expire (presigned links live {campaign.links.upload_expiry_hours} hours at most): one mapped task per
  campaign task, run even when the intake failed, so no team's links lapse because of one document
  or one task.

Each registration document is handled on its own: one that cannot be handled is set aside under
`registrations/rejected/` with the error and the organizers are e-mailed; the others go on.
"""
    with DAG(
        schedule=DeltaTriggerTimetable(dt.timedelta(minutes=campaign.intake_every_minutes)),
        start_date=opens,
        end_date=last_deadline,
        catchup=False,
        **dag_kwargs(campaign, "registration_intake", doc),
    ) as dag:

        @task(task_id="process_inbox")
        def process_inbox() -> dict:
            from include.campaign import registration

            return registration.intake(campaign_context(campaign_file))

        # all_done: renewal never waits on a successful intake (it runs after it, so the two never
        # send the same links at once); mapped per task, so one task's failure leaves the others'.
        @task(task_id="refresh_upload_links", map_index_template="{{ label }}", trigger_rule="all_done")
        def refresh_upload_links(item: dict) -> dict:
            from include.campaign import release

            label_map_index(item["label"])
            return release.refresh_upload_links(campaign_context(campaign_file), item["task_id"])

        process_inbox() >> refresh_upload_links.expand(item=[{"task_id": t, "label": t} for t in campaign.task_ids])
    return dag


def build_approval_dag(campaign_file: str, campaign) -> DAG | None:
    agreement_tasks = [t.id for t in campaign.tasks if t.requires_agreement]
    if not agreement_tasks:
        return None
    doc = f"""### {campaign.name}: approve or reject a signed user agreement

Trigger this DAG by hand (▶ with config) once you have checked a team's signed agreement for a task.
The decision, who made it (your Airflow user) and your note are recorded under
`registrations/approvals/`; an approved team immediately receives the links of any data already
released for that task. Tasks that need an agreement: {', '.join(agreement_tasks)}.

Before approving, look at the team record's `agreement_flags` (also in the intake's e-mail to you
and in the closing summary): the intake flags an agreement file that is byte for byte the one
another team gave. One decision may cover several tasks; every task is checked before any is recorded.
"""
    with DAG(
        schedule=None,
        start_date=campaign.milestone_time("registration_opens"),
        catchup=False,
        params={
            "team_id": Param("", type="string", minLength=1, title="Team id", description="The team's id as in its confirmation e-mail and under registrations/teams/."),
            "tasks": Param(
                [agreement_tasks[0]], type="array", items={"type": "string", "enum": agreement_tasks}, minItems=1, title="Tasks",
                description="The tasks whose signed agreement you checked for this team (one decision for all of them).",
            ),
            "decision": Param("approve", enum=["approve", "reject"], title="Decision", description="Approve to give the team the task's data; reject to refuse it."),
            "note": Param("", type="string", title="Note", description="Why (kept with the decision; a rejection's note is sent to the team)."),
        },
        **dag_kwargs(campaign, "agreement_approval", doc),
    ) as dag:

        @task(task_id="record_decision")
        def record_decision(**context) -> list[dict]:
            from include.campaign import registration

            params = context["params"]
            user = getattr(context["dag_run"], "triggering_user_name", None) or "unknown"
            ctx = campaign_context(campaign_file)
            return registration.decide_agreements(ctx, params["team_id"], list(params["tasks"]), params["decision"] == "approve", user, params["note"])

        record_decision()
    return dag


# Each DAG registers itself as its `with DAG(...)` block closes (Airflow's auto_register).
for _path, _campaign in valid_campaigns():
    build_registration_dag(str(_path), _campaign)
    build_intake_dag(str(_path), _campaign)
    build_approval_dag(str(_path), _campaign)
