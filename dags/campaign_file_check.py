"""One DAG per broken campaign file, so the organizer sees in the UI exactly what to fix.

A campaign file that fails ``check`` produces no stage DAGs; instead ``<file>_campaign_file_error``
appears, its doc listing every problem (file, line, path, rule). It has one task that fails with the
same message if triggered.
"""
from __future__ import annotations

import re

from airflow.sdk import DAG, task
from dags.clef_dag_support.runtime import load_all, task_defaults

from include.campaign.config import Campaign


def build_error_dag(path, error) -> DAG:
    dag_id = re.sub(r"[^a-zA-Z0-9_]", "_", path.stem) + "_campaign_file_error"
    message = error.render()
    with DAG(
        dag_id=dag_id,
        schedule=None,  # never runs by itself: it is there to be read
        start_date=None,
        catchup=False,
        description=f"{path.name} does not pass the campaign check",
        doc_md=f"### {path.name} is not a valid campaign file\n\nNo DAG is built from it until it is fixed:\n\n```\n{message}\n```\n",
        tags=["clef-campaign", "campaign-file-error"],
        default_args=task_defaults("clef-organizers"),
    ) as dag:

        @task(task_id="explain_campaign_file_errors")
        def explain() -> None:
            raise ValueError(message)

        explain()
    return dag


# Each DAG registers itself as its `with DAG(...)` block closes (Airflow's auto_register).
for _path, _result in load_all():
    if not isinstance(_result, Campaign):
        build_error_dag(_path, _result)
