"""The organizers' **Campaigns** entry in the Airflow UI: every campaign at a glance, its decisions one click away.

An Airflow 3 plugin: a FastAPI app mounted by the api-server under ``/campaigns`` (``fastapi_apps``)
and a navigation entry that shows it inside the UI (``external_views``). Every page and action needs
the signed-in Airflow user (the UI's JWT cookie or a Bearer token): an anonymous request is refused.
The panels come from :mod:`include.campaign.overview`, which reads the object store through the
domain code; this file only wires Airflow (users, connections, DAG runs) to it.

Actions never write decisions themselves: **Approve / Reject** and **Re-score** start the
``<campaign>_agreement_approval`` and ``<campaign>_scoring`` DAGs through Airflow's REST API with the
user's own token, so each DAG run records who asked, exactly as a trigger from the UI does.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)
URL_PREFIX = "/campaigns"
REST_TIMEOUT_SECONDS = 15
_LIST_SEPARATORS = re.compile(r"[\s,;]+")

app = FastAPI(title="clef-campaign: Campaigns", docs_url=None, redoc_url=None, openapi_url=None)


# --- who is asking ---------------------------------------------------------------------------------


async def signed_in_user(request: Request):
    """The Airflow user of this request, from the UI's cookie or a Bearer token; 401 otherwise."""
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    token = _request_token(request)
    if not token:
        raise HTTPException(status_code=401, detail="Sign in to Airflow first: the Campaigns page is for the campaign's organizers.")
    try:
        return await resolve_user_from_token(token)
    except HTTPException as exc:
        raise HTTPException(status_code=401, detail=f"Your Airflow sign-in is not valid ({exc.detail}): sign in again.") from None


def _request_token(request: Request) -> str | None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(COOKIE_NAME_JWT_TOKEN) or None


def user_name(user) -> str:
    return str(user.get_name() if hasattr(user, "get_name") else getattr(user, "username", "unknown"))


def csrf_token(user, campaign_id: str) -> str:
    """A per-user, per-campaign token for the page's forms (the api-server's secret key signs it)."""
    from airflow.configuration import conf

    secret = (conf.get("api", "secret_key", fallback="") or "clef-campaigns").encode()
    return hmac.new(secret, f"{user_name(user)}|{campaign_id}".encode(), hashlib.sha256).hexdigest()


def _check_form_origin(request: Request, user, campaign_id: str, token: str) -> None:
    if not hmac.compare_digest(token or "", csrf_token(user, campaign_id)):
        raise HTTPException(status_code=403, detail="This form is out of date or was not sent from the Campaigns page: reload the page and try again.")
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.url.netloc:
        raise HTTPException(status_code=403, detail=f"Refused a form sent from another site ({origin}).")


# --- campaigns and their context ------------------------------------------------------------------


def campaign_contexts() -> dict[str, Any]:
    """Every valid campaign file's context, by campaign id (connections read as the api-server sees them)."""
    from include.campaign.catalog import campaign_files
    from include.campaign.config import ConfigError

    contexts = {}
    for path in campaign_files():
        try:
            context = _context(str(path), path.stat().st_mtime)
        except ConfigError:
            continue  # its <file>_campaign_file_error DAG shows the problems
        contexts[context.campaign.id] = context
    return contexts


@lru_cache(maxsize=64)
def _context(path: str, mtime: float):
    from airflow.models.connection import Connection

    from include.campaign.catalog import S3_CONN_ID, SMTP_CONN_ID, context_from_connections

    return context_from_connections(path, Connection.get_connection_from_secrets(S3_CONN_ID), Connection.get_connection_from_secrets(SMTP_CONN_ID))


def _campaign_or_404(campaign_id: str):
    context = campaign_contexts().get(campaign_id)
    if context is None:
        raise HTTPException(status_code=404, detail=f"No campaign {campaign_id!r} among the campaign files.")
    return context


def dag_runs_of(campaign_id: str) -> list:
    """The campaign's DAG runs from Airflow's metadata database, for the timeline."""
    from sqlalchemy import select

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from include.campaign.overview import DagRunInfo

    pattern = campaign_id.replace("_", r"\_") + r"\_%"
    query = select(DagRun.dag_id, DagRun.run_id, DagRun.logical_date, DagRun.state).where(DagRun.dag_id.like(pattern, escape="\\"))
    with create_session() as session:
        return [DagRunInfo(dag_id=row.dag_id, run_id=row.run_id, logical_date=row.logical_date, state=str(row.state)) for row in session.execute(query)]


# --- warming the cache ------------------------------------------------------------------------------

WARM_UP_THREAD = "campaigns-warm-up"
WARM_UP_EVERY_SECONDS = 60.0
_warmed_at: dict[str, float] = {}
_warm_lock = threading.Lock()


def warm_up(contexts: dict[str, Any]) -> threading.Thread | None:
    """Read every campaign's panels in a background thread, at most once a minute per campaign.

    The list of campaigns and a campaign's timeline (its first tab) need no object read; the other
    tabs read hundreds of small objects the first time (a 200-team campaign's Registrations tab: 467
    GETs) and only what changed afterwards (:mod:`include.campaign.overview` caches them by ETag).
    Started from those two pages, the reads are done by the time the organizer opens another tab."""
    now = time.monotonic()
    with _warm_lock:
        due = [c for cid, c in contexts.items() if now - _warmed_at.get(cid, -WARM_UP_EVERY_SECONDS) >= WARM_UP_EVERY_SECONDS]
        _warmed_at.update({c.campaign.id: now for c in due})
    if not due:
        return None
    thread = threading.Thread(target=_warm, args=(due,), name=WARM_UP_THREAD, daemon=True)
    thread.start()
    return thread


def _warm(contexts: list) -> None:
    from include.campaign.overview import campaign_overview

    for context in contexts:
        try:
            campaign_overview(context)
        except Exception:  # the tab itself will show the error when it is opened; say it here too
            log.warning("Reading the Campaigns panels of %s ahead failed", context.campaign.id, exc_info=True)


# --- Airflow's REST API, called as the signed-in user -----------------------------------------------


def airflow_rest(request: Request):
    """An HTTP client for this api-server's REST API (tests swap in the in-process app)."""
    import httpx

    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    if not base:
        base = f"{request.url.scheme}://{request.url.netloc}"
    with httpx.Client(base_url=base, timeout=REST_TIMEOUT_SECONDS) as client:
        yield client


def trigger_dag(client, request: Request, dag_id: str, conf: dict[str, Any], note: str) -> dict[str, Any]:
    """POST /api/v2/dags/{dag_id}/dagRuns with the user's token; the REST API's refusal is shown as it is."""
    response = client.post(
        f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
        json={"logical_date": None, "conf": conf, "note": note},
        headers={"Authorization": f"Bearer {_request_token(request)}"},
    )
    if response.status_code >= 400:
        detail = response.json().get("detail") if response.headers.get("content-type", "").startswith("application/json") else response.text
        raise HTTPException(status_code=response.status_code, detail=f"Airflow refused to start {dag_id}: {detail}")
    return response.json()


# --- pages -----------------------------------------------------------------------------------------


def _render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    from include.campaign.mail import template_environment

    page = template_environment().get_template(f"campaigns/{name}").render(prefix=URL_PREFIX, **context)
    return HTMLResponse(page, status_code=status_code)


@app.get("/", response_class=HTMLResponse)
def campaign_list(user=Depends(signed_in_user)) -> HTMLResponse:
    from include.campaign.overview import campaign_summary

    contexts = campaign_contexts()
    warm_up(contexts)
    summaries = [campaign_summary(context) for context in contexts.values()]
    return _render("list.html.j2", campaigns=summaries, user=user_name(user))


@app.get("/{campaign_id}/overview.json")
def campaign_data(campaign_id: str, user=Depends(signed_in_user)) -> JSONResponse:
    from include.campaign.overview import campaign_overview

    return JSONResponse(campaign_overview(_campaign_or_404(campaign_id), dag_runs_of(campaign_id)))


@app.get("/{campaign_id}/", response_class=HTMLResponse)
def campaign_page(campaign_id: str, request: Request, user=Depends(signed_in_user)) -> HTMLResponse:
    """The campaign's timeline (the first tab); the other tabs are read ahead meanwhile."""
    page = panel_page(campaign_id, "timeline", request, user)
    warm_up({campaign_id: _campaign_or_404(campaign_id)})
    return page


@app.get("/{campaign_id}/{panel}", response_class=HTMLResponse)
def panel_page(campaign_id: str, panel: str, request: Request, user=Depends(signed_in_user)) -> HTMLResponse:
    """One tab of the campaign: timeline, registrations, submissions, evaluations or mail."""
    from include.campaign.overview import PANELS, campaign_panel

    context = _campaign_or_404(campaign_id)
    if panel not in PANELS:
        raise HTTPException(status_code=404, detail=f"No panel {panel!r}: the tabs are {', '.join(PANELS)}.")
    runs = dag_runs_of(campaign_id) if panel == "timeline" else ()
    view = campaign_panel(context, panel, runs)
    message = request.query_params.get("done", "")
    return _render("campaign.html.j2", o=view, panels=PANELS, user=user_name(user), csrf=csrf_token(user, campaign_id), message=message[:300])


@app.post("/{campaign_id}/agreements")
def decide_agreement(campaign_id: str, request: Request, team_id: str = Form(...), task: str = Form(...), decision: str = Form(...),
                     note: str = Form(""), csrf: str = Form(""), user=Depends(signed_in_user), client=Depends(airflow_rest)):
    """Approve or reject a pending agreement: one run of ``<campaign>_agreement_approval`` as this user."""
    context = _campaign_or_404(campaign_id)
    _check_form_origin(request, user, campaign_id, csrf)
    if decision not in ("approve", "reject"):
        raise HTTPException(status_code=400, detail="The decision is 'approve' or 'reject'.")
    if task not in [t.id for t in context.campaign.tasks if t.requires_agreement]:
        raise HTTPException(status_code=400, detail=f"Task {task!r} needs no signed agreement in {campaign_id}.")
    conf = {"team_id": team_id, "tasks": [task], "decision": decision, "note": note}
    run = trigger_dag(client, request, f"{campaign_id}_agreement_approval", conf, f"{decision} {team_id} for {task} (Campaigns page, {user_name(user)})")
    return _back(campaign_id, f"{decision.capitalize()} of {team_id} for {task} started as {run.get('dag_run_id', 'a new run')}.", "registrations")


@app.post("/{campaign_id}/rescore")
def rescore(campaign_id: str, request: Request, task: str = Form(...), reason: str = Form(...), teams: str = Form(""), runs: str = Form(""),
            csrf: str = Form(""), user=Depends(signed_in_user), client=Depends(airflow_rest)):
    """Re-score a task (optionally some teams or runs): one run of ``<campaign>_scoring`` as this user."""
    context = _campaign_or_404(campaign_id)
    _check_form_origin(request, user, campaign_id, csrf)
    if task not in context.campaign.task_ids:
        raise HTTPException(status_code=400, detail=f"No task {task!r} in {campaign_id}.")
    if not reason.strip():
        raise HTTPException(status_code=400, detail="Say why you re-score: the reason is kept in the lineage and told to teams whose scores change.")
    conf = {"task": task, "teams": _names(teams), "runs": _names(runs), "reason": reason.strip()}
    run = trigger_dag(client, request, f"{campaign_id}_scoring", conf, f"re-score {task}: {reason.strip()[:200]}")
    return _back(campaign_id, f"Re-scoring of {task} started as {run.get('dag_run_id', 'a new run')}.", "evaluations")


def _names(text: str) -> list[str]:
    return [name for name in _LIST_SEPARATORS.split(text or "") if name]


def _back(campaign_id: str, message: str, panel: str) -> RedirectResponse:
    return RedirectResponse(f"{URL_PREFIX}/{quote(campaign_id)}/{panel}?done={quote(message)}", status_code=303)


@app.exception_handler(HTTPException)
async def readable_error(request: Request, exc: HTTPException):
    if "text/html" in request.headers.get("accept", ""):
        return _render("error.html.j2", status_code=exc.status_code, status=exc.status_code, detail=str(exc.detail), login=_login_url(request) if exc.status_code == 401 else None)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


def _login_url(request: Request) -> str | None:
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().get_url_login(next_url=str(request.url))
    except Exception:  # an auth manager without a login page (tokens only)
        return None


class CampaignsViewPlugin(AirflowPlugin):
    """The Campaigns navigation entry and the app behind it."""

    name = "clef_campaigns"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Campaigns"}]
    external_views = [{"name": "Campaigns", "href": f"{URL_PREFIX}/", "destination": "nav", "url_route": "campaigns", "nav_top_level": True}]
