"""Scoring DAGs: validate and score every collected run when a task's runs arrive, or by hand to re-score."""
from __future__ import annotations

import logging

from airflow.sdk import DAG, AssetAny, Param, task
from dags.clef_dag_support.runtime import asset, asset_alias, campaign_context, dag_kwargs, label_map_index, valid_campaigns

from include.metrics.registry import DEFAULT_QUEUE, MODELS_QUEUE

AUTOMATIC_REASON = "runs collected at the deadline"
log = logging.getLogger(__name__)


def build_scoring_dag(campaign_file: str, campaign) -> DAG:
    task_ids = campaign.task_ids
    doc = f"""### {campaign.name}: scoring

**Starts by itself** when `{campaign.id}_run_collection` updates an asset `{campaign.id}/runs/<task>`,
and **by hand** (▶ with config) to re-score one run, one team or a whole task, e.g. after a gold file
or a metric changed: pick the task, optionally teams and runs (empty = all), and say why.

1. `plan_scoring` allocates a new evaluation version (`evaluations/<task>/v0001`, `v0002`, …; a
   re-score never overwrites an older one) and lists the runs to score;
2. `score_run` (mapped, labelled `task: team/run`, queue `default`) validates each run against its
   format and, when valid, scores it with the task's CPU metrics; an invalid run gets its report and
   is not ranked, and never fails the DAG run. For a task with metrics that need a model,
   `score_run_models` (queue `models`: workers with torch and the weights in `CLEF_MODEL_DIR`) scores
   those metrics of the same runs, at least 25 runs per instance so each model is loaded once per
   worker process (`plan_model_scoring` lists its batches); a model whose weights are missing gives
   its metrics a "not computed" reason naming it (`python -m include.cli models CAMPAIGN` lists them).
   `score_run` has one instance per run, up to 16 instances per queue (`CLEF_SCORING_MAX_INSTANCES`, never above Airflow's
   `max_map_length`); with more runs, each instance scores a batch of consecutive runs
   (docs/scoring-batches.md);
3. `build_leaderboard` (told the versions and the manifests by `plan_scoring`) writes the evaluation with its lineage (run and gold sha256, metric code
   version, reason, who), the diff against the previous version, and the leaderboard exports
   (CSV, JSON, HTML, LaTeX), which stay private until `{campaign.id}_results` publishes them.
   A run whose scoring instance failed is listed as *not scored* (with that reason): the
   results approval names it, so you can re-score it first, and its team is told.
   After publication, teams whose numbers changed are told what changed and why.
"""
    alias = asset_alias(campaign.id, "leaderboard")
    with DAG(
        schedule=AssetAny(*[asset(campaign.id, "runs", t) for t in task_ids]),
        start_date=campaign.milestone_time("registration_opens"),
        catchup=False,
        params={
            "task": Param(task_ids[0], enum=task_ids, title="Task", description="The task to re-score (used when you trigger by hand)."),
            "teams": Param([], type="array", items={"type": "string"}, title="Teams", description="Team ids to re-score, one per line; empty = every team."),
            "runs": Param([], type="array", items={"type": "string"}, title="Runs", description="Run names (run-01) or team/run; empty = every run of the selected teams."),
            "reason": Param("", type="string", title="Reason (required)", description="Why you re-score (a changed gold file, a metric fix...). Kept in the lineage and told to teams whose scores change."),
        },
        **dag_kwargs(campaign, "scoring", doc),
    ) as dag:

        @task(task_id="plan_scoring")
        def plan_scoring(**context) -> list[dict]:
            """Allocate the versions; return the batches of every run's CPU part (queue default), keep the
            batches of the model part (queue models) for the next task, and tell `build_leaderboard` each
            task's version and manifest (XCom ``versions``)."""
            from airflow.sdk.configuration import conf

            from include.campaign import evaluation
            from include.models import parts

            ctx = campaign_context(campaign_file)
            by_queue: dict[str, list[dict]] = {DEFAULT_QUEUE: [], MODELS_QUEUE: []}
            planned_versions = []
            for request in scoring_requests(context):
                manifest_key = request["manifest_key"] or ctx.layout.collection_manifest(request["task"])
                version = evaluation.new_version(ctx, request["task"], request["reason"], request["triggered_by"], request_id=f"{context['dag_run'].run_id}:{request['task']}")
                with_models = parts.has_model_part(ctx.campaign.task(request["task"]))
                for run in evaluation.plan(ctx, request["task"], request["teams"], request["runs"], manifest_key=manifest_key):
                    item = {**run, "task": request["task"], "version": version}
                    by_queue[DEFAULT_QUEUE].append(item)
                    if with_models:
                        by_queue[MODELS_QUEUE].append(item)
                planned_versions.append({**request, "version": version, "manifest_key": manifest_key})
                context["ti"].xcom_push(key="versions", value=planned_versions)  # what is fully planned, even if a later task fails
            limit = evaluation.max_instances(conf.getint("core", "max_map_length"), ctx.settings.scoring_max_instances)
            models = by_queue[MODELS_QUEUE]
            context["ti"].xcom_push(key=MODELS_QUEUE, value=evaluation.batches(models, parts.model_instances(len(models), limit)))
            return evaluation.batches(by_queue[DEFAULT_QUEUE], limit)

        @task(task_id="plan_model_scoring")
        def plan_model_scoring(**context) -> list[dict]:
            """The batches of the model part of runs whose task has a metric that needs a model (Airflow maps over return values only)."""
            return context["ti"].xcom_pull(task_ids="plan_scoring", key=MODELS_QUEUE) or []

        def score_runs(batch: dict, part: str) -> list[dict]:
            from include.campaign import evaluation

            label_map_index(batch["label"])
            return evaluation.score_batch(campaign_context(campaign_file), batch["runs"], part=part)

        @task(task_id="score_run", queue=DEFAULT_QUEUE, map_index_template="{{ label }}")
        def score_run(batch: dict) -> list[dict]:
            """The CPU part of a batch of runs: validation report and the metrics that need no model."""
            return score_runs(batch, "cpu")

        @task(task_id="score_run_models", queue=MODELS_QUEUE, map_index_template="{{ label }}")
        def score_run_models(batch: dict) -> list[dict]:
            """The model part of a batch of runs; each model is loaded once in this process (include/models/store.py)."""
            return score_runs(batch, "models")

        @task(task_id="build_leaderboard", outlets=[alias], trigger_rule="all_done")
        def build_leaderboard(summaries, model_summaries, **context) -> list[dict]:
            from include.campaign import evaluation, results

            ctx = campaign_context(campaign_file)
            summaries = _flatten(summaries) + _flatten(model_summaries)
            # What was planned: a planned run without a summary had its scoring task die, and is named as such.
            batches = (context["ti"].xcom_pull(task_ids="plan_scoring") or []) + (context["ti"].xcom_pull(task_ids="plan_scoring", key=MODELS_QUEUE) or [])
            planned = [item for batch in batches for item in batch["runs"]]
            requests = context["ti"].xcom_pull(task_ids="plan_scoring", key="versions")
            if not requests:
                raise RuntimeError("plan_scoring allocated no evaluation version (see its log); nothing to finalize")
            outcomes = []
            for request in requests:
                version = request["version"]
                mine = [s for s in (summaries or []) if s and s.get("task") == request["task"]]
                outcome, records = evaluation.finalize_with_records(
                    ctx, request["task"], version, mine, request["reason"], request["triggered_by"],
                    planned=[item for item in planned if item.get("task") == request["task"]], manifest_key=request["manifest_key"])
                if outcome["missing"]:
                    log.warning("%s %s: %d collected run(s) have no score (%s); the results approval names them and their teams are told",
                                request["task"], version, len(outcome["missing"]), ", ".join(outcome["missing"]))
                outcome["notified"] = results.notify_rescore(ctx, request["task"], version, request["reason"], current=records)
                context["outlet_events"][alias].add(asset(campaign.id, "leaderboard", request["task"]), extra={"task": request["task"], "version": version})
                outcomes.append(outcome)
            return outcomes

        planned = plan_scoring()
        planned_models = plan_model_scoring()
        planned >> planned_models
        build_leaderboard(score_run.expand(batch=planned), score_run_models.expand(batch=planned_models))
    return dag


def _flatten(batches) -> list[dict]:
    """Every run summary of a mapped scoring task; a batch whose instance failed has no result."""
    if batches is None:
        return []
    # A slice fetches the mapped results in one call (iterating probes one past the end, and the API
    # logs that probe as an error).
    return [summary for batch in batches[0 : len(batches)] if batch for summary in batch]


def scoring_requests(context) -> list[dict]:
    """What this run scores: the tasks of the triggering asset events (with the manifest each announced),
    or the form's choice."""
    events = context.get("triggering_asset_events") or {}
    manifests: dict[str, str | None] = {}
    for asset_events in events.values():
        for event in asset_events:
            task_id = (event.extra or {}).get("task")
            if task_id and task_id not in manifests:
                manifests[task_id] = (event.extra or {}).get("manifest_key")
    if manifests:
        return [{"task": t, "teams": [], "runs": [], "reason": AUTOMATIC_REASON, "triggered_by": "asset event", "manifest_key": key}
                for t, key in manifests.items()]
    params = context["params"]
    reason = str(params.get("reason") or "").strip()
    if not reason:
        raise ValueError("Say why you re-score: the 'Reason' field of the trigger form is required.")
    user = getattr(context["dag_run"], "triggering_user_name", None) or "unknown"
    return [{"task": params["task"], "teams": list(params.get("teams") or []), "runs": list(params.get("runs") or []), "reason": reason,
             "triggered_by": user, "manifest_key": None}]


# Each DAG registers itself as its `with DAG(...)` block closes (Airflow's auto_register).
for _path, _campaign in valid_campaigns():
    build_scoring_dag(str(_path), _campaign)
