"""Results DAGs: on each task's results date, an organizer approves, then every team gets its scores."""
from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, task
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

APPROVAL_RESPONSE_TIMEOUT = dt.timedelta(days=14)


def build_results_dag(campaign_file: str, campaign) -> DAG:
    events = milestone_events(campaign, ("results_release",))
    doc = f"""### {campaign.name}: results release

On each task's results date:
1. `wait_for_scoring` waits until the runs collected for every task due are scored (it checks every
   30 s; a scoring that failed keeps it waiting: re-run `{campaign.id}_scoring` by hand);
   `summarise_results` then shows the latest leaderboard of every task due (top runs, valid and
   invalid counts, teams) and names every collected run that has **no score** (its scoring task
   died): approve to publish without it (its team is told why), or reject and re-score it first;
2. `approve_publication` **waits for you**: open *Required actions* (or the task instance) in the
   Airflow UI, read the summary, and approve or reject. Nothing is published or sent before that;
3. `publish_results` (one mapped instance per task) copies the leaderboards to
   `public/leaderboards/<task>/` and e-mails each team one message with every one of its runs' scores,
   its rank, the number of participating teams and the leaderboard link. A second run sends nothing
   twice; a later re-score e-mails only the teams whose numbers changed. An address the mail server
   refuses is reported to the organizers and the other teams are served; if the server cannot be
   reached the task fails after the first failure and its retry sends only what is missing.

Fires on:

{milestone_table(events)}
"""
    with DAG(
        schedule=milestone_timetable(events, "results release"),
        start_date=first_moment(events),
        catchup=True,  # a late deployment still fires the missed milestones, in order
        **dag_kwargs(campaign, "results", doc),
    ) as dag:

        @task(task_id="plan_results")
        def plan_results(**context) -> list[dict]:
            due = due_events(events, context)
            return [{"task_id": t, "label": t} for e in due for t in e.task_ids]

        @task.sensor(task_id="wait_for_scoring", poke_interval=30, timeout=12 * 3600, mode="reschedule")
        def wait_for_scoring(items: list[dict]):
            """Results wait until the runs collected for every due task are scored."""
            from airflow.sdk import PokeReturnValue

            from include.campaign import results

            pending = results.scoring_pending(campaign_context(campaign_file), [item["task_id"] for item in items])
            return PokeReturnValue(is_done=not pending, xcom_value=pending)

        @task(task_id="summarise_results")
        def summarise_results(items: list[dict]) -> str:
            from include.campaign import results

            ctx = campaign_context(campaign_file)
            parts = [f"## {item['task_id']}\n\n{results.summary(ctx, item['task_id'])}" for item in items]
            return "\n\n".join(parts) or "No task has its results release at this date."

        approve = ApprovalOperator(
            task_id="approve_publication",
            subject=f"{campaign.name}: publish the results?",
            body="{{ ti.xcom_pull(task_ids='summarise_results') }}",
            # The wait for a human is bounded separately from each try's execution_timeout (which
            # HITL operators would otherwise turn into the response timeout): two weeks, then the
            # task fails visibly and clearing it asks again.
            response_timeout=APPROVAL_RESPONSE_TIMEOUT,
        )

        @task(task_id="publish_results", map_index_template="{{ label }}")
        def publish_results(item: dict, **context) -> dict:
            from include.campaign import results

            label_map_index(item["label"])
            answer = context["ti"].xcom_pull(task_ids="approve_publication") or {}
            approver = (answer.get("responded_by_user") or {}).get("name") or "unknown"
            return results.publish(campaign_context(campaign_file), item["task_id"], approved_by=approver)

        planned = plan_results()
        wait_for_scoring(planned) >> summarise_results(planned) >> approve >> publish_results.expand(item=planned)
    return dag


# Each DAG registers itself as its `with DAG(...)` block closes (Airflow's auto_register).
for _path, _campaign in valid_campaigns():
    build_results_dag(str(_path), _campaign)
