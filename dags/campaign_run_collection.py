"""Run-collection DAGs: at each task's deadline, freeze every run uploaded in time and e-mail receipts."""
from __future__ import annotations

from airflow.sdk import DAG, task
from dags.clef_dag_support.runtime import (
    asset,
    asset_alias,
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


def build_run_collection_dag(campaign_file: str, campaign) -> DAG:
    events = milestone_events(campaign, ("run_deadline",))
    doc = f"""### {campaign.name}: run collection

At each task's run deadline (one mapped task instance per task):
- for every registered team, the latest version of each run uploaded **at or before the deadline**
  (the object store's own timestamp, not the upload link's) is copied to `collected/<task>/<team>/`,
  with a manifest (team, run, size, sha256, upload time) at `collected/<task>/manifest.json`;
- versions uploaded after the deadline are listed as late and not collected; uploads from teams not
  registered for the task are refused; a team over its run limit keeps its latest runs and is told
  which were dropped;
- each team gets a receipt listing exactly what was collected;
- the asset `{campaign.id}/runs/<task>` is updated, which starts `{campaign.id}_scoring`.

Fires on:

{milestone_table(events)}
"""
    alias = asset_alias(campaign.id, "runs")
    with DAG(
        schedule=milestone_timetable(events, "run submission deadlines"),
        start_date=first_moment(events),
        catchup=True,  # a late deployment still fires the missed milestones, in order
        **dag_kwargs(campaign, "run_collection", doc),
    ) as dag:

        @task(task_id="plan_collection")
        def plan_collection(**context) -> list[dict]:
            due = due_events(events, context)
            return [{"task_id": t, "label": t} for e in due for t in e.task_ids]

        @task(task_id="collect_runs", map_index_template="{{ label }}")
        def collect_runs(item: dict) -> dict:
            from include.campaign import collection

            label_map_index(item["label"])
            ctx = campaign_context(campaign_file)
            manifest = collection.collect(ctx, item["task_id"])
            manifest_key = ctx.layout.collection_manifest(item["task_id"])
            return {"task": item["task_id"], "manifest_key": manifest_key, "collected": len(manifest.get("collected", [])), "late": len(manifest.get("late", []))}

        # One step announces every task collected at this deadline, so they are scored in one run.
        # A task whose collection failed is left out; the others still go to scoring.
        @task(task_id="announce_collected_runs", outlets=[alias], trigger_rule="all_done")
        def announce_collected_runs(collected, **context) -> list[str]:
            # A slice fetches every result in one call; only collections that succeeded have one.
            results = collected[0 : len(collected)] if collected is not None else []
            for result in results:
                context["outlet_events"][alias].add(asset(campaign.id, "runs", result["task"]), extra={"task": result["task"], "manifest_key": result["manifest_key"]})
            return [result["task"] for result in results]

        announce_collected_runs(collect_runs.expand(item=plan_collection()))
    return dag


# Each DAG registers itself as its `with DAG(...)` block closes (Airflow's auto_register).
for _path, _campaign in valid_campaigns():
    build_run_collection_dag(str(_path), _campaign)
