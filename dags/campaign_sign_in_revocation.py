"""Sign-in revocation DAGs: an organizer withdraws every portal link and session of one team."""
from __future__ import annotations

from airflow.sdk import DAG, Param, task
from dags.clef_dag_support.runtime import campaign_context, dag_kwargs, valid_campaigns


def build_revocation_dag(campaign_file: str, campaign) -> DAG:
    doc = f"""### {campaign.name}: revoke a team's sign-in links

Trigger by hand (▶ with config) when a team's sign-in link leaked or its contact changed: every
sign-in link and portal session of the team issued until now stops working. The decision, who made it
(your Airflow user) and the reason are kept in `registrations/sign-in/<team>.json`. The team's contact
can ask the portal for a new link at any time (it goes to the contact address of the team's record).
"""
    with DAG(
        schedule=None,
        start_date=campaign.milestone_time("registration_opens"),
        catchup=False,
        params={
            "team_id": Param("", type="string", minLength=1, title="Team id", description="The team's id as under registrations/teams/."),
            "reason": Param("", type="string", minLength=1, title="Reason", description="Why the links are withdrawn (kept with the decision)."),
        },
        **dag_kwargs(campaign, "sign_in_revocation", doc),
    ) as dag:

        @task(task_id="revoke_links")
        def revoke_links(**context) -> dict:
            from include.campaign.confirmation import revoke_sign_in

            params = context["params"]
            user = getattr(context["dag_run"], "triggering_user_name", None) or "unknown"
            return revoke_sign_in(campaign_context(campaign_file), params["team_id"], user, params["reason"])

        revoke_links()
    return dag


# Each DAG registers itself as its `with DAG(...)` block closes (Airflow's auto_register).
for _path, _campaign in valid_campaigns():
    build_revocation_dag(str(_path), _campaign)
