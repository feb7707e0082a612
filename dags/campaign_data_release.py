"""Data-release DAGs: at each task's development and test release dates, publish the staged data and e-mail links."""
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

SPLIT_OF = {"dev_data_release": "dev", "test_data_release": "test"}


def build_data_release_dag(campaign_file: str, campaign) -> DAG:
    events = milestone_events(campaign, tuple(SPLIT_OF))
    doc = f"""### {campaign.name}: data releases

For every task due at this date (one mapped task instance per task and split):
1. checks the files under `staging/<task>/<split>/` against that folder's `MANIFEST.json` (sha256 and
   size); a missing, altered or unlisted file stops **that task's** release with a message saying which
   file, and the other tasks go on;
2. never releases `gold/` or any file the manifest marks as ground truth;
3. copies the files to `releases/<task>/<split>/` and e-mails every approved team presigned download
   links; the test release also sends each team one upload link per allowed run (`curl -T FILE URL`);
4. updates the asset `{campaign.id}/release/<task>/<split>`.

Re-running is safe: files already released are not copied twice and nobody gets a second e-mail.

Fires on:

{milestone_table(events)}
"""
    alias = asset_alias(campaign.id, "release")
    with DAG(
        schedule=milestone_timetable(events, "development and test data releases"),
        start_date=first_moment(events),
        catchup=True,  # a late deployment still fires the missed milestones, in order
        **dag_kwargs(campaign, "data_release", doc),
    ) as dag:

        @task(task_id="plan_releases")
        def plan_releases(**context) -> list[dict]:
            due = due_events(events, context)
            return [{"task_id": t, "split": SPLIT_OF[e.milestone], "label": f"{t} ({SPLIT_OF[e.milestone]})"} for e in due for t in e.task_ids]

        @task(task_id="release_task_data", map_index_template="{{ label }}", outlets=[alias])
        def release_task_data(item: dict, **context) -> dict:
            from include.campaign import release

            label_map_index(item["label"])
            result = release.release(campaign_context(campaign_file), item["task_id"], item["split"])
            context["outlet_events"][alias].add(asset(campaign.id, "release", item["task_id"], item["split"]), extra={"task": item["task_id"], "split": item["split"]})
            return result

        release_task_data.expand(item=plan_releases())
    return dag


# Each DAG registers itself as its `with DAG(...)` block closes (Airflow's auto_register).
for _path, _campaign in valid_campaigns():
    build_data_release_dag(str(_path), _campaign)
