"""Registration: announce the opening, take in registration documents, decide user agreements, close.

Teams register with a JSON document placed under ``registrations/inbox/`` (the schema is
``include/schemas/_registration.yaml``). :func:`intake` reads every document there; its arrival time
is the object's ``LastModified`` (the store's clock, not the sender's). A document that fails
validation, or that arrived before its tasks opened or after they closed, is moved to
``registrations/rejected/<document>/`` with ``reason.json`` and answered with the reasons. A valid
one is merged into the team's record (``registrations/teams/<team>.json``), moved to
``registrations/accepted/<document>/``, and confirmed by e-mail; a team registering after a data
release of its task also receives that release's links.

Tasks that need a signed user agreement give a team data only after :func:`decide_agreement`
recorded an organizer's approval. :func:`close` runs a last intake, freezes the team list as a CSV
snapshot with its sha256 and e-mails the organizers a summary per task.

Every function can run again: documents already handled have left the inbox, records are rewritten
only when their content changes, and each e-mail goes out once (the outbox).
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import jsonschema
import yaml
from email_validator import EmailNotValidError, validate_email

from include.campaign import confirmation
from include.campaign.context import CampaignContext
from include.campaign.layout import SPLITS, UnsafeKeyError, segment
from include.campaign.release import release_records, send_released_data
from include.campaign.teams import (
    NOT_REQUIRED,
    Notices,
    agreement_status,
    all_teams,
    approval_record,
    describe_moment,
    in_utc,
    load_team,
    normalise_team_name,
    organizer_addresses,
    put_bytes_if_changed,
    put_json_if_changed,
    task_dates,
    team_slug,
    unique_addresses,
    utc_stamp,
)
from include.campaign.teams import approved_teams as _approved_teams
from include.schemas import SCHEMA_DIR

SCHEMA_PATH = SCHEMA_DIR / "_registration.yaml"
MAX_DOCUMENT_BYTES = 64 * 1024
AGREEMENT_PREFIX = "registrations/agreements/"
SNAPSHOT_COLUMNS = ("team_id", "team_name", "affiliation", "country", "contact_name", "contact_email", "task", "agreement", "registered_at")


class RegistrationError(ValueError):
    """An organizer's request cannot be carried out (unknown team or task, no agreement needed...)."""


@lru_cache(maxsize=1)
def registration_schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


# --- the documents in the inbox ------------------------------------------------------------------


@dataclass(frozen=True)
class InboxDocument:
    key: str
    name: str  # relative to the inbox
    received_at: datetime  # the store's LastModified

    @property
    def document_id(self) -> str:
        """``20250301T101500Z-my-team``: arrival stamp first, so listings read in order; one per upload."""
        stem = re.sub(r"\.json$", "", self.name, flags=re.IGNORECASE)
        readable = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._=+@-]+", "-", stem)).strip("-.")[:60] or "document"
        return f"{utc_stamp(self.received_at)}-{readable}"


def inbox_documents(ctx: CampaignContext) -> list[InboxDocument]:
    """Documents waiting in the inbox, oldest first (ties by key, so team ids are assigned stably)."""
    prefix = ctx.layout.registrations_inbox()
    documents = [InboxDocument(info.key, info.key[len(prefix):], info.last_modified) for info in ctx.store.list_objects(prefix) if not info.key.endswith("/")]
    return sorted(documents, key=lambda d: (d.received_at, d.key))


# --- reading one document ------------------------------------------------------------------------


@dataclass
class Reading:
    fields: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    contact_email: str | None = None


def read_registration(ctx: CampaignContext, where: str, raw: bytes) -> Reading:
    """Parse and validate one document; every problem names the file, the line and the rule."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        return Reading(None, [f"{where}: {len(raw)} bytes; a registration is a JSON document of at most {MAX_DOCUMENT_BYTES // 1024} KiB"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Reading(None, [f"{where}: not UTF-8 text (byte {exc.start})"])
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return Reading(None, [f"{where}, line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"])
    if not isinstance(document, dict):
        return Reading(None, [f"{where}, line 1: expected a JSON object with the fields {', '.join(registration_schema()['required'])}"])
    fields = _tidy(document)
    errors = sorted(jsonschema.Draft202012Validator(registration_schema()).iter_errors(fields), key=lambda e: [str(p) for p in e.absolute_path])
    problems = [f"{where}, line {_line_of(text, list(e.absolute_path))}: {_explain(e)}" for e in errors]
    contact, contact_problem = _contact_address(fields.get("contact_email"))
    if contact_problem and not any(list(e.absolute_path)[:1] == ["contact_email"] for e in errors):
        problems.append(f"{where}, line {_line_of(text, ['contact_email'])}: contact_email: {contact_problem}")
    if not errors:
        problems += [f"{where}, line {_line_of(text, path)}: {message}" for path, message in _campaign_problems(ctx, fields)]
    return Reading(None if problems else fields, problems, contact)


def _tidy(document: dict[str, Any]) -> dict[str, Any]:
    """Strip spaces around strings and accept a lower-case country code."""
    tidy = {key: value.strip() if isinstance(value, str) else value for key, value in document.items()}
    if isinstance(tidy.get("country"), str):
        tidy["country"] = tidy["country"].upper()
    return tidy


def _explain(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    place = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))
    if error.validator == "required":
        missing = re.match(r"'(.+)' is a required property", error.message)
        return f"missing required field {missing.group(1) if missing else error.message!r}"
    if error.validator == "additionalProperties" and not path:
        allowed = ", ".join(registration_schema()["properties"])
        return f"{error.message}; the fields are: {allowed}"
    explanation = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    if explanation:
        shown = f"{error.instance!r} " if isinstance(error.instance, (str, int, float)) and not isinstance(error.instance, bool) else ""
        return f"{place}: {shown}{explanation}"
    return f"{place}: {error.message}" if place else error.message


def _line_of(text: str, path: list[Any]) -> int:
    """The line of the innermost key of ``path`` found in the JSON text (array items: their key's line)."""
    position = 0
    for part in path:
        if not isinstance(part, str):
            continue
        match = re.compile(re.escape(json.dumps(part)) + r"\s*:").search(text, position)
        if match is None:
            break
        position = match.start()
    return text.count("\n", 0, position) + 1


def _contact_address(value: Any) -> tuple[str | None, str | None]:
    """(normalised address, None) or (None, why it cannot be used)."""
    if not isinstance(value, str) or not value:
        return None, "missing"
    try:
        address = validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        return None, f"{value!r} is not a usable e-mail address: {exc}"
    try:
        segment(address.lower())  # the outbox keys its markers by address
    except UnsafeKeyError:
        return None, f"{value!r}: please use an address made of letters, digits and . _ @ + = - only"
    return address, None


def _campaign_problems(ctx: CampaignContext, fields: dict[str, Any]) -> list[tuple[list[Any], str]]:
    """What the schema cannot know: the campaign's tasks, and the signed agreements they need."""
    campaign = ctx.campaign
    problems: list[tuple[list[Any], str]] = []
    for index, task_id in enumerate(fields["tasks"]):
        if task_id not in campaign.task_ids:
            problems.append((["tasks", index], f"tasks[{index}]: {task_id!r} is not a task of {campaign.name} (tasks: {', '.join(campaign.task_ids)})"))
    agreements = fields.get("agreements") or {}
    for task_id, key in agreements.items():
        if task_id not in fields["tasks"]:
            problems.append((["agreements", task_id], f"agreements.{task_id}: {task_id!r} is not one of the tasks you register for"))
        elif ".." in key:
            problems.append((["agreements", task_id], f"agreements.{task_id}: {key!r} must not contain '..'"))
        elif ctx.store.head(agreement_key(ctx, key)) is None:
            problems.append((["agreements", task_id], f"agreements.{task_id}: no file at {key}: upload your signed agreement there first"))
    for task_id in fields["tasks"]:
        if task_id in campaign.task_ids and campaign.task(task_id).requires_agreement and task_id not in agreements:
            problems.append((["tasks"], f"agreements: task {task_id!r} requires a signed user agreement: upload the signed PDF under {AGREEMENT_PREFIX} and give its key as agreements.{task_id}"))
    return problems


def agreement_key(ctx: CampaignContext, relative_key: str) -> str:
    return ctx.layout.agreements() + relative_key[len(AGREEMENT_PREFIX):]


def _outside_window(ctx: CampaignContext, task_id: str, received_at: datetime) -> str | None:
    campaign = ctx.campaign
    opens = campaign.milestone_time("registration_opens", task_id)
    closes = campaign.milestone_time("registration_closes", task_id)
    arrived = describe_moment(campaign, received_at)
    if received_at < opens:
        return f"registration for task {task_id} opens on {describe_moment(campaign, opens)}; your registration arrived on {arrived}, before that: send it again once registration is open"
    if received_at > closes:
        return f"registration for task {task_id} closed on {describe_moment(campaign, closes)}; your registration arrived on {arrived}, after that"
    return None


# --- intake --------------------------------------------------------------------------------------


def intake(ctx: CampaignContext) -> dict[str, Any]:
    """Handle every document in the inbox; see the module docstring."""
    notices = Notices(ctx)
    accepted, rejected, awaiting = [], [], []
    for document in inbox_documents(ctx):
        outcome = _take_in(ctx, document, notices)
        {"accepted": accepted, "awaiting confirmation": awaiting}.get(outcome["status"], rejected).append(outcome)
    notices.raise_if_failed("registration intake")
    return {"accepted": accepted, "rejected": rejected, "awaiting_confirmation": awaiting, "mail": notices.summary()}


def _take_in(ctx: CampaignContext, document: InboxDocument, notices: Notices) -> dict[str, Any]:
    raw = ctx.store.get_bytes(document.key)
    reading = read_registration(ctx, document.key, raw)
    if reading.problems:
        return _reject(ctx, document, raw, reading.problems, reading.contact_email, notices)
    fields = reading.fields
    refused = {task_id: reason for task_id in fields["tasks"] if (reason := _outside_window(ctx, task_id, document.received_at))}
    open_tasks = [task_id for task_id in ctx.campaign.task_ids if task_id in fields["tasks"] and task_id not in refused]
    if not open_tasks:
        return _reject(ctx, document, raw, list(refused.values()), reading.contact_email, notices)
    # Proof of address (confirmation.py): no team is created or changed before the contact clicked.
    waiting = confirmation.awaiting_confirmation(ctx, document.key, document.received_at, raw, reading.contact_email, open_tasks, notices)
    if waiting == confirmation.EXPIRED:
        return _reject(ctx, document, raw, [confirmation.EXPIRED_REASON], None, notices)
    if waiting:
        return {"status": "awaiting confirmation", "document": document.key, "tasks": open_tasks}
    failures_before = len(notices.failed)
    team = _record_team(ctx, fields, reading.contact_email, document, open_tasks, refused)
    records = release_records(ctx, team["tasks"])
    _confirm(ctx, team, document, open_tasks, refused, records, notices)
    data_sent = send_released_data(ctx, team, open_tasks, notices, records)
    if len(notices.failed) == failures_before:  # else keep it in the inbox: the next intake sends what is missing
        _move(ctx, document, raw, ctx.layout.registrations_accepted())
    return {"status": "accepted", "document": document.key, "team_id": team["team_id"], "tasks": open_tasks, "refused_tasks": refused, "released_data_sent": data_sent}


def _move(ctx: CampaignContext, document: InboxDocument, raw: bytes, prefix: str, reason: dict[str, Any] | None = None) -> str:
    folder = prefix + document.document_id + "/"
    put_bytes_if_changed(ctx.store, folder + "registration.json", raw, content_type="application/json")
    if reason is not None:
        put_json_if_changed(ctx.store, folder + "reason.json", reason)
    ctx.store.delete(document.key)
    return folder


def _reject(ctx: CampaignContext, document: InboxDocument, raw: bytes, reasons: list[str], contact: str | None, notices: Notices) -> dict[str, Any]:
    campaign = ctx.campaign
    failures_before = len(notices.failed)
    if contact:
        notices.send(
            "registration-rejected", document.document_id, contact,  # the contact is unconfirmed: no text of the sender's
            document=utc_stamp(document.received_at), received=describe_moment(campaign, document.received_at), reasons=confirmation.mail_safe_reasons(reasons),
            windows=[{"task": task, "opens": describe_moment(campaign, campaign.milestone_time("registration_opens", task.id)),
                      "closes": describe_moment(campaign, campaign.milestone_time("registration_closes", task.id))} for task in campaign.tasks],
        )
    reason = {"document": document.key, "received_at": in_utc(document.received_at), "reasons": reasons, "answered": contact}
    folder = None
    if len(notices.failed) == failures_before:
        folder = _move(ctx, document, raw, ctx.layout.registrations_rejected(), reason)
    return {"status": "rejected", "document": document.key, "reasons": reasons, "answered": contact, "kept_at": folder}


def _record_team(ctx: CampaignContext, fields: dict[str, Any], contact: str, document: InboxDocument, open_tasks: list[str], refused: dict[str, str]) -> dict[str, Any]:
    """Create or merge the team's record; same name and contact = same team, same name only = a new id."""
    normalised = normalise_team_name(fields["team_name"])
    base = team_slug(normalised)
    entry = {"document": document.document_id, "source_key": document.key, "received_at": in_utc(document.received_at), "tasks": open_tasks, "refused_tasks": refused}
    for number in itertools.count(1):
        team_id = base if number == 1 else f"{base}-{number}"
        existing = load_team(ctx, team_id)
        if existing is None:
            record = _new_record(ctx, team_id, normalised, fields, contact, entry)
            if ctx.store.create_json_once(ctx.layout.team_record(team_id), record):
                return record
            existing = load_team(ctx, team_id)  # another intake wrote it a moment ago
        if existing["normalized_name"] == normalised and existing["contact_email"].lower() == contact.lower():
            merged = _merge(ctx, existing, fields, entry)
            put_json_if_changed(ctx.store, ctx.layout.team_record(team_id), merged)
            return merged
    raise AssertionError("unreachable")


def _new_record(ctx: CampaignContext, team_id: str, normalised: str, fields: dict[str, Any], contact: str, entry: dict[str, Any]) -> dict[str, Any]:
    record = {"team_id": team_id, "team_name": fields["team_name"], "normalized_name": normalised, "contact_email": contact, "tasks": [], "agreements": {}, "registrations": []}
    return _merge(ctx, record, fields, entry)


def _merge(ctx: CampaignContext, record: dict[str, Any], fields: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    if any(item["document"] == entry["document"] for item in record["registrations"]):
        return record  # this document was merged by an earlier, interrupted run
    tasks = set(record["tasks"]) | set(entry["tasks"])
    agreements = dict(record["agreements"])
    agreements.update({task: agreement_key(ctx, key) for task, key in (fields.get("agreements") or {}).items() if task in entry["tasks"]})
    return {
        **record,
        "affiliation": fields["affiliation"],
        "country": fields["country"],
        "contact_name": fields["contact_name"],
        "tasks": [task_id for task_id in ctx.campaign.task_ids if task_id in tasks],
        "agreements": dict(sorted(agreements.items())),
        "registrations": record["registrations"] + [entry],
    }


def _confirm(ctx: CampaignContext, team: dict[str, Any], document: InboxDocument, open_tasks: list[str], refused: dict[str, str],
             records: dict[tuple[str, str], dict[str, Any]], notices: Notices) -> None:
    campaign = ctx.campaign
    tasks = []
    for task_id in team["tasks"]:
        task = campaign.task(task_id)
        released = [split for split in SPLITS if (task_id, split) in records]
        tasks.append({"task": task, "new": task_id in open_tasks, "agreement": agreement_status(ctx, team, task_id), "released": released, "dates": task_dates(campaign, task_id)})
    notices.send("registration-confirmation", document.document_id, team["contact_email"], team=team, tasks=tasks, refused=refused,
                 sign_in=confirmation.sign_in_link(ctx, team["team_id"]))


# --- agreements ----------------------------------------------------------------------------------


def approved_teams(ctx: CampaignContext, task_id: str) -> list[dict[str, Any]]:
    """Teams of the task that may get its data (no agreement needed, or an approved one)."""
    return _approved_teams(ctx, task_id)


def decide_agreement(ctx: CampaignContext, team_id: str, task_id: str, approved: bool, decided_by: str, note: str = "") -> dict[str, Any]:
    """Record an organizer's decision on a team's signed agreement; on approval, send data already released."""
    team, task = _team_and_task(ctx, team_id, task_id)
    if not str(decided_by or "").strip():
        raise RegistrationError("decided_by is empty: say who decides (the Airflow user), so the decision can be traced")
    decision = {"approved": bool(approved), "decided_by": str(decided_by).strip(), "note": str(note or "").strip()}
    key = ctx.layout.approval_record(team_id, task_id)
    previous = approval_record(ctx, team_id, task_id)
    if previous is not None and all(previous[name] == value for name, value in decision.items()):
        record = previous  # the same decision again (a re-run): keep its time
    else:
        history = (previous or {}).get("history", []) + ([{k: v for k, v in previous.items() if k != "history"}] if previous else [])
        record = {"team": team_id, "task": task_id, **decision, "decided_at": in_utc(ctx.now()), "agreement": team["agreements"].get(task_id), "history": history}
        put_json_if_changed(ctx.store, key, record)
    notices = Notices(ctx)
    decided_at = datetime.fromisoformat(record["decided_at"])
    notices.send("agreement-decision", f"{task_id}.{team_id}.{utc_stamp(decided_at)}", team["contact_email"], team=team, task=task, decision=record, dates=task_dates(ctx.campaign, task_id))
    data_sent = send_released_data(ctx, team, [task_id], notices) if record["approved"] else []
    notices.raise_if_failed(f"agreement decision for {team_id} on {task_id}")
    return {"team": team_id, "task": task_id, "approved": record["approved"], "decided_by": record["decided_by"], "decided_at": record["decided_at"], "record_key": key, "released_data_sent": data_sent, "mail": notices.summary()}


def _team_and_task(ctx: CampaignContext, team_id: str, task_id: str):
    if task_id not in ctx.campaign.task_ids:
        raise RegistrationError(f"no task {task_id!r} in {ctx.campaign.id}; tasks: {', '.join(ctx.campaign.task_ids)}")
    task = ctx.campaign.task(task_id)
    try:
        team = load_team(ctx, team_id)
    except UnsafeKeyError:
        team = None
    if team is None:
        known = [t["team_id"] for t in all_teams(ctx)]
        raise RegistrationError(f"no team {team_id!r} in {ctx.campaign.id}; registered teams: {', '.join(known) or 'none yet'}")
    if task_id not in team["tasks"]:
        raise RegistrationError(f"team {team_id} did not register for {task_id} (its tasks: {', '.join(team['tasks'])})")
    if not task.requires_agreement:
        raise RegistrationError(f"task {task_id} needs no signed agreement: every registered team receives its data")
    return team, task


# --- opening and closing -------------------------------------------------------------------------


def announce_opening(ctx: CampaignContext, task_ids: list[str]) -> dict[str, Any]:
    """E-mail the campaign's announcement list and the organizers that registration is open."""
    campaign = ctx.campaign
    tasks = [campaign.task(task_id) for task_id in task_ids]
    opens_at = min(campaign.milestone_time("registration_opens", task.id) for task in tasks)
    recipients = unique_addresses([*(str(a) for a in campaign.announce_to), *organizer_addresses(campaign, task_ids)])
    listing = [{"task": task, "dates": task_dates(campaign, task.id, ("registration_opens", "registration_closes", "dev_data_release", "test_data_release", "run_deadline"))} for task in tasks]
    schema = registration_schema()
    notices = Notices(ctx)
    for recipient in recipients:
        notices.send("announcement", f"registration_opens.{utc_stamp(opens_at)}", recipient, tasks=listing, opens=describe_moment(campaign, opens_at), fields=schema["required"], inbox=ctx.layout.registrations_inbox(), agreement_prefix=ctx.layout.agreements())
    notices.raise_if_failed("registration announcement")
    return {"tasks": list(task_ids), "recipients": recipients, "mail": notices.summary()}


def close(ctx: CampaignContext, task_ids: list[str]) -> dict[str, Any]:
    """Final intake, frozen team list (CSV + sha256), a per-task summary e-mailed to the organizers."""
    campaign = ctx.campaign
    final_intake = intake(ctx)
    closes_at = max(campaign.milestone_time("registration_closes", task_id) for task_id in task_ids)
    stamp = utc_stamp(closes_at)
    teams = [team for team in all_teams(ctx) if any(task_id in team["tasks"] for task_id in task_ids)]
    snapshot_key = ctx.layout.registrations_snapshots() + f"teams-{stamp}.csv"
    data = snapshot_csv(teams, task_ids)
    frozen_now = ctx.store.create_once(snapshot_key, data, content_type="text/csv")
    frozen = data if frozen_now else ctx.store.get_bytes(snapshot_key)  # frozen at the first close: kept as it was
    digest = hashlib.sha256(frozen).hexdigest()
    ctx.store.create_once(snapshot_key + ".sha256", f"{digest}  {snapshot_key.rsplit('/', 1)[1]}\n".encode(), content_type="text/plain")
    summary = [_task_summary(ctx, teams, task_id) for task_id in task_ids]
    notices = Notices(ctx)
    for recipient in organizer_addresses(campaign, task_ids):
        notices.send("registration-summary", f"registration_closes.{stamp}", recipient, tasks=summary, team_count=len(teams), snapshot_key=snapshot_key, sha256=digest, closed=describe_moment(campaign, closes_at))
    notices.raise_if_failed("registration closing")
    return {
        "tasks": list(task_ids),
        "final_intake": {"accepted": len(final_intake["accepted"]), "rejected": len(final_intake["rejected"])},
        "snapshot_key": snapshot_key,
        "sha256": digest,
        "snapshot_differs_from_current": frozen != data,
        "teams_per_task": {item["task"].id: item["count"] for item in summary},
        "mail": notices.summary(),
    }


def snapshot_csv(teams: list[dict[str, Any]], task_ids: list[str]) -> bytes:
    """One row per (team, task) of the closing tasks, sorted: the same teams give the same bytes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SNAPSHOT_COLUMNS)
    for team in sorted(teams, key=lambda t: t["team_id"]):
        for task_id in task_ids:
            if task_id in team["tasks"]:
                first = next((r["received_at"] for r in team["registrations"] if task_id in r["tasks"]), "")
                writer.writerow([team["team_id"], team["team_name"], team["affiliation"], team["country"], team["contact_name"], team["contact_email"], task_id, team["agreements"].get(task_id, ""), first])
    return buffer.getvalue().encode("utf-8")


def _task_summary(ctx: CampaignContext, teams: list[dict[str, Any]], task_id: str) -> dict[str, Any]:
    members = [{"team": team, "agreement": agreement_status(ctx, team, task_id)} for team in teams if task_id in team["tasks"]]
    statuses = [member["agreement"] for member in members]
    return {
        "task": ctx.campaign.task(task_id),
        "count": len(members),
        "countries": sorted({member["team"]["country"] for member in members}),
        "teams": members,
        "pending": statuses.count("pending"),
        "approved": statuses.count("approved") + statuses.count(NOT_REQUIRED),
        "refused": statuses.count("refused"),
    }
