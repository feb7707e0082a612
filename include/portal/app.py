"""The participants' portal (FastAPI, server-rendered): campaign pages, registration, sign-in, team pages.

``app`` reads its settings from the environment at the first request (see ``settings.py``), so the
same object serves ``uvicorn include.portal.app:app`` and the Airflow plugin. :func:`create_app`
builds one with explicit settings (tests). Pages:

- ``/``: the campaigns; ``/c/<campaign>``: tasks, dates (campaign zone and the visitor's), agreements,
  published leaderboards (``/c/<campaign>/leaderboards/<task>``);
- ``/c/<campaign>/register``: the registration form; ``/c/<campaign>/confirm``: proof of address;
- ``/c/<campaign>/sign-in``: opens the team's page from an e-mailed link, or e-mails a new link;
- ``/c/<campaign>/team``: the signed-in team's tasks, downloads, upload forms, receipts and results.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, NamedTuple
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from include.campaign import confirmation
from include.campaign.config import Campaign, ConfigError, load_campaign
from include.campaign.context import CampaignContext
from include.campaign.layout import SPLITS, UnsafeKeyError, segment
from include.campaign.release import release_record, run_names
from include.campaign.store import ObjectStore
from include.campaign.teams import Notices, all_teams, may_receive_data
from include.portal import forms, pages
from include.portal.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    SECURITY_HEADERS,
    BodyLimit,
    RateLimiter,
    content_security_policy,
    csrf_field_value,
    csrf_problem,
    new_csrf_cookie,
    text_problem,
)
from include.portal.settings import PortalSettings

HERE = Path(__file__).resolve().parent
HOUR = 3600


class Portal:
    """Settings, campaigns and shared clients of one running portal."""

    def __init__(self, settings: PortalSettings | None = None):
        self._settings = settings
        self._lock = threading.Lock()
        self._campaigns: dict[str, tuple[float, Campaign]] = {}
        self.limiter = RateLimiter()
        self.templates = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)

    @cached_property
    def settings(self) -> PortalSettings:
        settings = self._settings or PortalSettings.from_env()
        confirmation.TokenSigner(settings.secret)  # refuse to run with a missing or weak secret
        return settings

    @cached_property
    def store(self) -> ObjectStore:
        return ObjectStore(self.settings.s3)

    @cached_property
    def signing_store(self) -> ObjectStore:
        return ObjectStore(self.settings.signing_s3()) if self.settings.public_s3_endpoint else self.store

    @cached_property
    def signer(self) -> confirmation.TokenSigner:
        return confirmation.TokenSigner(self.settings.secret)

    def campaigns(self) -> dict[str, Campaign]:
        """Every valid campaign file, re-read when it changes; broken files are left out."""
        found: dict[str, Campaign] = {}
        for path in sorted(self.settings.campaigns_dir.glob("*.yaml")):
            if path.name.startswith("_"):
                continue
            stamp = path.stat().st_mtime
            with self._lock:
                cached = self._campaigns.get(str(path))
            if cached is None or cached[0] != stamp:
                try:
                    cached = (stamp, load_campaign(path))
                except ConfigError:
                    continue
                with self._lock:
                    self._campaigns[str(path)] = cached
            found[cached[1].id] = cached[1]
        return found

    def context(self, campaign_id: str) -> CampaignContext | None:
        campaign = self.campaigns().get(campaign_id)
        return CampaignContext(campaign, self.store, self.settings.smtp) if campaign else None

    def upload_origin(self) -> str | None:
        endpoint = self.settings.signing_s3().endpoint_url
        if not endpoint:
            return "https://*.amazonaws.com"
        parts = urlsplit(endpoint)
        return f"{parts.scheme}://{parts.netloc}"

    def body_limit(self, path: str) -> int:
        limits = self.settings.limits
        return limits.registration_bytes if path.rstrip("/").endswith("/register") else limits.form_bytes


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    portal = Portal(settings)
    app = FastAPI(title="Participants' portal", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.portal = portal

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", content_security_policy(portal.upload_origin()))
        return response

    _routes(app, portal)
    app.add_middleware(BodyLimit, limit_for=lambda path: portal.body_limit(path))
    return app


# --- helpers shared by the routes ------------------------------------------------------------------


def _base(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _render(portal: Portal, request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    cookie = request.cookies.get(CSRF_COOKIE)
    fresh = cookie is None or len(cookie) > 100
    if fresh:
        cookie = new_csrf_cookie()
    html = portal.templates.get_template(template).render(base=_base(request), csrf_field=CSRF_FIELD, csrf_token=csrf_field_value(portal.settings.secret, cookie), **values)
    response = HTMLResponse(html, status_code=status)
    if fresh:
        response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="strict", secure=portal.settings.secure_cookies, path=_base(request) or "/")
    return response


def _message(portal: Portal, request: Request, title: str, text: str, status: int = 200, ctx: CampaignContext | None = None, links: list[tuple[str, str]] | None = None) -> HTMLResponse:
    return _render(portal, request, "message.html.j2", status, title=title, text=text, campaign=ctx.campaign if ctx else None, links=links or [])


async def _form(request: Request, portal: Portal, **limits: int) -> dict[str, Any] | HTMLResponse:
    """The posted form after the CSRF check, or the refusal page."""
    try:
        form = await request.form(**limits)
    except StarletteHTTPException as refusal:
        return _message(portal, request, "Form refused", f"this form cannot be read ({refusal.detail}); nothing was stored", status=400)
    problem = csrf_problem(portal.settings.secret, request.cookies.get(CSRF_COOKIE), form.get(CSRF_FIELD) if isinstance(form.get(CSRF_FIELD), str) else None,
                           request.headers.get("origin"), request.headers.get("host"))
    if problem:
        return _message(portal, request, "Form refused", problem, status=403)
    return form


class RateLimit(NamedTuple):
    """A POST route's per-address limit: the limiter's bucket, the settings' ``limits`` field, the refusal."""

    bucket: str
    per_hour_setting: str
    title: str
    text: str


REGISTRATION_RATE = RateLimit("register", "registrations_per_hour", "Too many registrations",
                              "Too many registrations came from your address in the last hour; nothing was stored. Try again later.")
SIGN_IN_RATE = RateLimit("sign-in", "sign_in_requests_per_hour", "Too many requests",
                         "Too many sign-in requests came from your address in the last hour. Try again later.")


@dataclass
class Posted:
    """What a POST route works on once :func:`_posted` let the request through."""

    ctx: CampaignContext
    form: Any  # starlette's FormData
    team: dict[str, Any] | None = None


async def _posted(portal: Portal, request: Request, campaign_id: str, max_fields: int, max_files: int | Callable[[CampaignContext], int] = 0,
                  max_part_size: int | None = None, rate: RateLimit | None = None, signed_in: bool = False) -> Posted | HTMLResponse:
    """Every POST route's first steps, in order: the campaign lookup, the rate limit (``rate``), the
    team's session (``signed_in``), then the form read within its limits and the CSRF check. Returns
    the campaign, form and team, or the page that refuses the request."""
    ctx = portal.context(campaign_id)
    if ctx is None:
        return _not_found(portal, request)
    if rate is not None and not portal.limiter.allow(rate.bucket, _client(request), getattr(portal.settings.limits, rate.per_hour_setting), HOUR):
        return _message(portal, request, rate.title, rate.text, 429, ctx)
    team = _signed_in(portal, request, ctx) if signed_in else None
    if signed_in and team is None:
        return _sign_in_needed(portal, request, ctx)
    limits = {"max_fields": max_fields, "max_files": max_files(ctx) if callable(max_files) else max_files}
    form = await _form(request, portal, **limits, **({"max_part_size": max_part_size} if max_part_size else {}))
    return form if isinstance(form, HTMLResponse) else Posted(ctx, form, team)


class TeamRequest(NamedTuple):
    """What a signed-in team's GET route works on once :func:`_team_request` let the request through."""

    ctx: CampaignContext
    team: dict[str, Any]


def _team_request(portal: Portal, request: Request, campaign_id: str) -> TeamRequest | HTMLResponse:
    """Every signed-in team's GET route's first steps: the campaign lookup, then the team's session.
    Returns the campaign and team, or the page that refuses the request (not found, or sign in)."""
    ctx = portal.context(campaign_id)
    if ctx is None:
        return _not_found(portal, request)
    team = _signed_in(portal, request, ctx)
    if team is None:
        return _sign_in_needed(portal, request, ctx)
    return TeamRequest(ctx, team)


def _session_cookie(campaign_id: str) -> str:
    return f"clef_team_{campaign_id}"


def _signed_in(portal: Portal, request: Request, ctx: CampaignContext) -> dict[str, Any] | None:
    token = request.cookies.get(_session_cookie(ctx.campaign.id))
    if not token:
        return None
    try:
        return confirmation.team_of_token(ctx, portal.signer, token, confirmation.SESSION)
    except confirmation.TokenError:
        return None


def _not_found(portal: Portal, request: Request) -> HTMLResponse:
    return _message(portal, request, "Not found", "There is no such campaign or page.", status=404)


def _sign_in_needed(portal: Portal, request: Request, ctx: CampaignContext) -> HTMLResponse:
    return _message(portal, request, "Please sign in", "Open the sign-in link from your e-mail, or ask for a new one with your contact address.", status=401, ctx=ctx,
                    links=[(f"{_base(request)}/c/{ctx.campaign.id}/sign-in", "Ask for a sign-in link")])


# --- routes ---------------------------------------------------------------------------------------


def _routes(app: FastAPI, portal: Portal) -> None:  # noqa: C901 - one place lists every page
    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.get("/static/portal.{kind}")
    def static(kind: str) -> Response:
        types = {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8"}
        if kind not in types:
            return Response(status_code=404)
        return Response((HERE / "static" / f"portal.{kind}").read_bytes(), media_type=types[kind], headers={"Cache-Control": "max-age=300"})

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request):
        return _render(portal, request, "index.html.j2", campaigns=list(portal.campaigns().values()), campaign=None)

    @app.get("/c/{campaign_id}", response_class=HTMLResponse)
    def campaign_page(request: Request, campaign_id: str):
        ctx = portal.context(campaign_id)
        if ctx is None:
            return _not_found(portal, request)
        return _render(portal, request, "campaign.html.j2", campaign=ctx.campaign, page=pages.campaign_page(ctx))

    @app.get("/c/{campaign_id}/leaderboards/{task_id}", response_class=HTMLResponse)
    def leaderboard(request: Request, campaign_id: str, task_id: str):
        ctx = portal.context(campaign_id)
        if ctx is None or task_id not in ctx.campaign.task_ids:
            return _not_found(portal, request)
        board = pages.public_board(ctx, task_id)
        if board is None:
            return _message(portal, request, "Not published yet", "The results of this task are not published yet.", status=404, ctx=ctx)
        return _render(portal, request, "leaderboard.html.j2", campaign=ctx.campaign, task=ctx.campaign.task(task_id), board=board)

    # registration -------------------------------------------------------------------------------

    @app.get("/c/{campaign_id}/register", response_class=HTMLResponse)
    def register_form(request: Request, campaign_id: str):
        ctx = portal.context(campaign_id)
        if ctx is None:
            return _not_found(portal, request)
        return _registration_page(portal, request, ctx, forms.RegistrationForm({}, [], {}))

    @app.post("/c/{campaign_id}/register", response_class=HTMLResponse)
    async def register(request: Request, campaign_id: str):
        limits = portal.settings.limits
        posted = await _posted(portal, request, campaign_id, max_fields=40, max_files=lambda ctx: len(ctx.campaign.tasks),
                               max_part_size=limits.agreement_bytes + 1024, rate=REGISTRATION_RATE)
        if isinstance(posted, HTMLResponse):
            return posted
        ctx = posted.ctx
        form = await _registration_form(posted.form, ctx, limits)
        document = forms.check_registration(ctx, form, limits)
        if document is None:
            return _registration_page(portal, request, ctx, form, status=422)
        key, raw, problems = forms.store_registration(ctx, document, form.agreements)
        if problems:
            form.add("form", "the registration could not be taken: " + "; ".join(p.split(": ", 1)[-1] for p in problems))
            return _registration_page(portal, request, ctx, form, status=422)
        notices = Notices(ctx)
        contact = document["contact_email"]
        confirmation.send_confirmation_request(ctx, key, ctx.now(), raw, contact, document["tasks"], notices)
        return _render(portal, request, "registered.html.j2", campaign=ctx.campaign, contact=contact, mailed=not notices.failed and not notices.undeliverable,
                       hours=confirmation.CONFIRM_HOURS, every=ctx.campaign.intake_every_minutes)

    # proof of address ------------------------------------------------------------------------------

    @app.get("/c/{campaign_id}/confirm", response_class=HTMLResponse)
    def confirm_page(request: Request, campaign_id: str, token: str = ""):
        ctx = portal.context(campaign_id)
        if ctx is None:
            return _not_found(portal, request)
        try:
            portal.signer.verify(token, confirmation.CONFIRM, ctx.campaign.id, ctx.now())
        except confirmation.TokenError as problem:
            return _message(portal, request, "Link not usable", str(problem), 400, ctx)
        return _render(portal, request, "confirm.html.j2", campaign=ctx.campaign, token=token)

    @app.post("/c/{campaign_id}/confirm", response_class=HTMLResponse)
    async def confirm(request: Request, campaign_id: str):
        posted = await _posted(portal, request, campaign_id, max_fields=4)
        if isinstance(posted, HTMLResponse):
            return posted
        ctx = posted.ctx
        try:
            confirmation.confirm(ctx, portal.signer, str(posted.form.get("token") or ""))
        except confirmation.TokenError as problem:
            return _message(portal, request, "Link not usable", str(problem), 400, ctx)
        return _message(portal, request, "Address confirmed", f"Thank you. Your registration is taken in at the next intake (every {ctx.campaign.intake_every_minutes} minutes); "
                        "you then receive an e-mail with your team id and the link to your team's page.", ctx=ctx)

    # sign-in ----------------------------------------------------------------------------------------

    @app.get("/c/{campaign_id}/sign-in", response_class=HTMLResponse)
    def sign_in(request: Request, campaign_id: str, token: str = ""):
        ctx = portal.context(campaign_id)
        if ctx is None:
            return _not_found(portal, request)
        if not token:
            return _render(portal, request, "sign-in.html.j2", campaign=ctx.campaign, error=None)
        try:
            team = confirmation.team_of_token(ctx, portal.signer, token, confirmation.SIGN_IN)
        except confirmation.TokenError as problem:
            return _render(portal, request, "sign-in.html.j2", 400, campaign=ctx.campaign, error=str(problem))
        response = RedirectResponse(f"{_base(request)}/c/{ctx.campaign.id}/team", status_code=303)
        response.set_cookie(_session_cookie(ctx.campaign.id), confirmation.session_token(ctx, portal.signer, team["team_id"]), max_age=confirmation.SESSION_HOURS * HOUR,
                            httponly=True, samesite="lax", secure=portal.settings.secure_cookies, path=f"{_base(request)}/c/{ctx.campaign.id}")
        return response

    @app.post("/c/{campaign_id}/sign-in", response_class=HTMLResponse)
    async def request_link(request: Request, campaign_id: str):
        posted = await _posted(portal, request, campaign_id, max_fields=4, rate=SIGN_IN_RATE)
        if isinstance(posted, HTMLResponse):
            return posted
        ctx = posted.ctx
        address = str(posted.form.get("contact_email") or "").strip()
        problem = text_problem(address, 254) or (None if "@" in address else "is not an e-mail address")
        if problem:
            return _render(portal, request, "sign-in.html.j2", 422, campaign=ctx.campaign, error=f"contact e-mail {problem}")
        notices = Notices(ctx)
        for team in all_teams(ctx):
            if str(team.get("contact_email", "")).lower() == address.lower():
                confirmation.send_sign_in_link(ctx, team, notices)
        # The same answer whether or not a team has this address: the page tells nobody who takes part.
        return _message(portal, request, "Check your mailbox", "If a team of this campaign has this contact address, a sign-in link is on its way to it "
                        "(at most one per hour).", ctx=ctx)

    @app.post("/c/{campaign_id}/sign-out")
    async def sign_out(request: Request, campaign_id: str):
        posted = await _posted(portal, request, campaign_id, max_fields=2)
        if isinstance(posted, HTMLResponse):
            return posted
        response = RedirectResponse(f"{_base(request)}/c/{campaign_id}", status_code=303)
        response.delete_cookie(_session_cookie(campaign_id), path=f"{_base(request)}/c/{campaign_id}")
        return response

    # the team's page ----------------------------------------------------------------------------------

    @app.get("/c/{campaign_id}/team", response_class=HTMLResponse)
    def team_page(request: Request, campaign_id: str):
        signed_in = _team_request(portal, request, campaign_id)
        if isinstance(signed_in, HTMLResponse):
            return signed_in
        ctx, team = signed_in
        view = pages.team_page(ctx, team, portal.settings.limits.files_listed)
        redirect = f"{str(request.base_url).rstrip('/')}/c/{ctx.campaign.id}/team"
        for item in view["tasks"]:
            item["forms"] = _upload_forms(portal, ctx, team, item, redirect) if item["test_phase"] else {}
        return _render(portal, request, "team.html.j2", campaign=ctx.campaign, view=view, uploaded=request.query_params.get("key", ""))

    @app.get("/c/{campaign_id}/team/receipts/{task_id}/{run}/{version}", response_class=HTMLResponse)
    def receipt_page(request: Request, campaign_id: str, task_id: str, run: str, version: str):
        signed_in = _team_request(portal, request, campaign_id)
        if isinstance(signed_in, HTMLResponse):
            return signed_in
        ctx, team = signed_in
        if task_id not in team["tasks"] or run not in run_names(ctx.campaign.task(task_id).runs_allowed):
            return _not_found(portal, request)
        try:
            key = ctx.layout.receipt(task_id, team["team_id"], run, segment(version))
        except UnsafeKeyError:
            return _not_found(portal, request)
        if ctx.store.head(key) is None:
            return _message(portal, request, "No receipt yet", "This upload has not been checked yet; the check runs every "
                            f"{ctx.campaign.submission_check_every_minutes} minutes during the test phase.", 404, ctx)
        return _render(portal, request, "receipt.html.j2", campaign=ctx.campaign, team=team, receipt=ctx.store.get_json(key))

    @app.post("/c/{campaign_id}/team/download")
    async def download(request: Request, campaign_id: str):
        posted = await _posted(portal, request, campaign_id, max_fields=6, signed_in=True)
        if isinstance(posted, HTMLResponse):
            return posted
        ctx, team = posted.ctx, posted.team
        task_id, split, path = (str(posted.form.get(name) or "") for name in ("task", "split", "path"))
        if task_id not in team["tasks"] or split not in SPLITS or not may_receive_data(ctx, team, task_id):
            return _message(portal, request, "Not available", "Your team cannot download this (not one of its tasks, or its agreement is not approved yet).", 403, ctx)
        record = release_record(ctx, task_id, split)
        if record is None:
            return _message(portal, request, "Not released", "This data has not been released yet.", 404, ctx)
        seconds = portal.settings.limits.download_link_seconds
        if path == "*":
            urls = "\n".join(portal.signing_store.presigned_get(item["key"], seconds) for item in record["files"]) + "\n"
            return PlainTextResponse(urls, headers={"Content-Disposition": f'attachment; filename="{segment(task_id)}-{split}-links.txt"'})
        item = next((entry for entry in record["files"] if entry["path"] == path), None)
        if item is None:
            return _message(portal, request, "No such file", "This file is not part of the release.", 404, ctx)
        return RedirectResponse(portal.signing_store.presigned_get(item["key"], seconds), status_code=303)


async def _registration_form(posted, ctx: CampaignContext, limits) -> forms.RegistrationForm:
    values = {name: value for name in forms.TEXT_FIELDS if isinstance(value := posted.get(name), str)}
    tasks = [value for value in posted.getlist("tasks") if isinstance(value, str)]
    agreements: dict[str, bytes] = {}
    for task in ctx.campaign.tasks:
        upload = posted.get(f"agreement_{task.id}")
        if isinstance(upload, UploadFile):
            data = await upload.read(limits.agreement_bytes + 1)  # the client's file name is never used
            if data:
                agreements[task.id] = data
    return forms.RegistrationForm(values, tasks, agreements)


def _registration_page(portal: Portal, request: Request, ctx: CampaignContext, form: forms.RegistrationForm, status: int = 200) -> HTMLResponse:
    from include.campaign.registration import registration_schema

    schema = registration_schema()
    return _render(portal, request, "register.html.j2", status, campaign=ctx.campaign, form=form, properties=schema["properties"],
                   countries=schema["properties"]["country"]["enum"], page=pages.campaign_page(ctx), max_mib=portal.settings.limits.agreement_bytes // (1024 * 1024))


def _upload_forms(portal: Portal, ctx: CampaignContext, team: dict[str, Any], item: dict[str, Any], redirect: str) -> dict[str, dict[str, Any]]:
    """One presigned POST per run slot: the key is the team's own slot, the size at most the task's limit."""
    task_id = item["task"].id
    seconds = portal.settings.limits.upload_form_seconds
    return {slot: portal.signing_store.presigned_post(ctx.layout.submission(task_id, team["team_id"], slot), item["max_bytes"], seconds, redirect)
            for slot in item["slots"]}


app = create_app()
