"""Registration: announce the opening, take in registration documents, decide user agreements, close.

Teams register with a JSON document placed under ``registrations/inbox/`` (the schema is
``include/schemas/_registration.yaml``). :func:`intake` reads every document there; its arrival time
is the object's ``LastModified`` (the store's clock, not the sender's). A document that fails
validation, or that arrived before its tasks opened or after they closed, is moved to
``registrations/rejected/<document>/`` with ``reason.json`` and answered with the reasons. A valid
one is merged into the team's record (``registrations/teams/<team>.json``), moved to
``registrations/accepted/<document>/``, and confirmed by e-mail; a team registering after a data
release of its task also receives that release's links.

Each document is handled on its own (:func:`handle_document`): whatever one document does, the
others are taken in. A document larger than :data:`MAX_DOCUMENT_BYTES` (by the listing) is refused
unread; JSON is parsed with bounded size and nesting; text fields refuse control, invisible
(format) and line-separator characters, and a team name that mixes scripts. An error nobody
foresaw sets the document aside in ``rejected/`` with the error and tells the organizers; a store
that fails leaves the document in the inbox for the next run, and the intake fails at the end.

Team names: case, width (fullwidth letters) and spacing do not make another name, so the same name
from the same contact adds tasks to that team, and from another contact makes a second team with a
suffixed id (``vision-lab-2``) whose confirmation says so. A name that *reads* like a registered
team's name without being it (``VISI0N LAB`` next to ``VISION LAB``, Cyrillic letters in a Latin
name) is refused with the name of the team it imitates: on a leaderboard nobody could tell the two
apart, so an organizer would have to ask one team to rename anyway.

Signed agreements: the sha256 of each agreement file is recorded with the team. A file another team
already gave (the same bytes, under any key) is flagged in the team's record, in the e-mail to the
organizers sent at once, and in the closing summary; the organizer who checks the agreement decides.

Tasks that need a signed user agreement give a team data only after :func:`decide_agreement`
recorded an organizer's approval. :func:`close` runs a last intake, freezes the team list as a CSV
snapshot with its sha256 (text cells escaped against spreadsheet formulas) and e-mails the
organizers a summary per task.

Every function can run again: documents already handled have left the inbox, records are rewritten
only when their content changes, and each e-mail goes out once (the outbox).
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import logging
import re
import traceback
import unicodedata
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
from include.campaign.leaderboard import spreadsheet_safe
from include.campaign.release import release_records, send_released_data
from include.campaign.store import StoreError
from include.campaign.teams import (
    NOT_REQUIRED,
    DeliveryError,
    Notices,
    TeamDirectory,
    agreement_status,
    all_teams,
    approval_record,
    copy_if_changed,
    local_and_utc_text,
    in_utc,
    load_team,
    mixed_script_problem,
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

log = logging.getLogger(__name__)

SCHEMA_PATH = SCHEMA_DIR / "_registration.yaml"
MAX_DOCUMENT_BYTES = 64 * 1024
MAX_NESTING = 8  # a registration nests 2 levels (the object, then "tasks" and "agreements")
MAX_AGREEMENT_BYTES = 20 * 1024 * 1024
STORE_FAILURES_BEFORE_STOPPING = 3  # consecutive: the store is down, leave the rest for the next run
AGREEMENT_PREFIX = "registrations/agreements/"
SNAPSHOT_COLUMNS = ("team_id", "team_name", "affiliation", "country", "contact_name", "contact_email", "task", "agreement", "registered_at")
TEXT_RULE = (
    "text fields are one line of visible characters: control (Cc), format (Cf, invisible such as zero-width), "
    "line or paragraph separator (Zl, Zp), surrogate and private-use characters are not allowed"
)
_REFUSED_CHARACTERS = {
    "Cc": "a control character", "Cf": "an invisible format character", "Zl": "a line separator",
    "Zp": "a paragraph separator", "Cs": "a lone surrogate", "Co": "a private-use character",
}

_CONTROL_NAMES = {  # unicodedata has no names for control characters
    "\t": "CHARACTER TABULATION", "\n": "LINE FEED", "\x0b": "LINE TABULATION", "\x0c": "FORM FEED",
    "\r": "CARRIAGE RETURN", "\x1c": "FILE SEPARATOR", "\x1d": "GROUP SEPARATOR", "\x1e": "RECORD SEPARATOR",
    "\x85": "NEXT LINE", "\x00": "NULL", "\x1b": "ESCAPE", "\x7f": "DELETE",
}


class RegistrationError(ValueError):
    """An organizer's request cannot be carried out (unknown team or task, no agreement needed...)."""


class IntakeError(RuntimeError):
    """Documents stayed in the inbox because the store failed; the next run takes them in."""


@lru_cache(maxsize=1)
def registration_schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def text_problem(value: str, kind: str = "line") -> str | None:
    """Why ``value`` cannot be a text field of a registration (``kind`` ``name``: also one script), or None.

    The portal and the intake both check text with this (through the schema's ``x-text`` keyword).
    """
    for position, char in enumerate(value, 1):
        category = unicodedata.category(char)
        if category in _REFUSED_CHARACTERS:
            name = unicodedata.name(char, "") or _CONTROL_NAMES.get(char, "")
            return f"character {position} is U+{ord(char):04X}{' ' + name if name else ''}, {_REFUSED_CHARACTERS[category]}: {TEXT_RULE}"
    return mixed_script_problem(value) if kind == "name" else None


def _text_keyword(validator, kind, instance, schema):
    if isinstance(instance, str) and (problem := text_problem(instance, kind)):
        yield jsonschema.ValidationError(problem)


@lru_cache(maxsize=1)
def registration_validator() -> jsonschema.protocols.Validator:
    """The registration schema's validator, with the ``x-text`` keyword (see :func:`text_problem`)."""
    extended = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"x-text": _text_keyword})
    return extended(registration_schema())


# --- the documents in the inbox ------------------------------------------------------------------


@dataclass(frozen=True)
class InboxDocument:
    key: str
    name: str  # relative to the inbox
    received_at: datetime  # the store's LastModified
    size: int = 0  # from the listing: a document too large is refused without being read
    etag: str = ""

    @property
    def document_id(self) -> str:
        """``20250301T101500Z-my-team-3f2a9c01d4``: arrival stamp first, so listings read in order.

        The readable part is cut at 60 characters, so a digest of the full key and of this version's
        ETag keeps two documents apart when their names share 60 characters and they arrive in the
        same second; the same object version always gets the same id (a re-run finds its records).
        """
        stem = re.sub(r"\.json$", "", self.name, flags=re.IGNORECASE)
        readable = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._=+@-]+", "-", stem)).strip("-.")[:60].rstrip("-.") or "document"
        digest = hashlib.sha256(f"{self.key}\n{self.etag}".encode("utf-8", "surrogatepass")).hexdigest()[:10]
        return f"{utc_stamp(self.received_at)}-{readable}-{digest}"


def inbox_documents(ctx: CampaignContext) -> list[InboxDocument]:
    """Documents waiting in the inbox, oldest first (ties by key, so team ids are assigned stably)."""
    prefix = ctx.layout.registrations_inbox()
    documents = [
        InboxDocument(info.key, info.key[len(prefix):], info.last_modified, info.size, info.etag)
        for info in ctx.store.list_objects(prefix) if not info.key.endswith("/")
    ]
    return sorted(documents, key=lambda d: (d.received_at, d.key))


# --- reading one document ------------------------------------------------------------------------


@dataclass
class Reading:
    fields: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    contact_email: str | None = None
    text: str = ""

    def line_of(self, path: list[Any]) -> int:
        return _line_of(self.text, path)


def read_registration(ctx: CampaignContext, where: str, raw: bytes) -> Reading:
    """Parse and validate one document; every problem names the file, the line and the rule."""
    document, text, problem = parse_document(where, raw)
    if problem:
        return Reading(None, [problem], text=text)
    if not isinstance(document, dict):
        return Reading(None, [f"{where}, line 1: expected a JSON object with the fields {', '.join(registration_schema()['required'])}"], text=text)
    fields = _tidy(document)
    errors = sorted(registration_validator().iter_errors(fields), key=lambda e: [str(p) for p in e.absolute_path])
    problems = [f"{where}, line {_line_of(text, list(e.absolute_path))}: {_explain(e)}" for e in errors]
    contact, contact_problem = _contact_address(fields.get("contact_email"))
    if contact_problem and not any(list(e.absolute_path)[:1] == ["contact_email"] for e in errors):
        problems.append(f"{where}, line {_line_of(text, ['contact_email'])}: contact_email: {contact_problem}")
    if not errors:
        problems += [f"{where}, line {_line_of(text, path)}: {message}" for path, message in _campaign_problems(ctx, fields)]
    else:  # the other reasons do not hide an unknown task
        problems += [f"{where}, line {_line_of(text, path)}: {message}" for path, message in _unknown_tasks(ctx, fields, errors)]
    return Reading(None if problems else fields, problems, contact, text)


class _DuplicateField(ValueError):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            raise _DuplicateField(name)
        seen.add(name)
    return dict(pairs)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_document(where: str, raw: bytes) -> tuple[Any, str, str | None]:
    """(document, text, None) or (None, text, the problem): bounded size and nesting, no duplicate fields."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        return None, "", f"{where}: more than {MAX_DOCUMENT_BYTES} bytes; a registration is a JSON document of at most {MAX_DOCUMENT_BYTES // 1024} KiB"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, "", f"{where}: not UTF-8 text (byte {exc.start})"
    too_deep_at = _nesting_beyond(text, MAX_NESTING)
    if too_deep_at is not None:
        line = text.count("\n", 0, too_deep_at) + 1
        return None, text, f"{where}, line {line}: arrays and objects nested more than {MAX_NESTING} levels deep; a registration is one object of text fields, a list of tasks and an object of agreements (the reader stops at {MAX_NESTING} levels and {MAX_DOCUMENT_BYTES // 1024} KiB)"
    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant), text, None
    except json.JSONDecodeError as exc:
        return None, text, f"{where}, line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"
    except _DuplicateField as exc:
        return None, text, f"{where}, line {_line_of_second(text, exc.name)}: field {exc.name!r} is given twice; give each field once"
    except (ValueError, RecursionError) as exc:  # NaN, a number of thousands of digits
        return None, text, f"{where}: not a registration the reader accepts: {exc}"


def _nesting_beyond(text: str, limit: int) -> int | None:
    """The offset where arrays and objects nest deeper than ``limit`` (strings skipped), or None."""
    depth = 0
    in_string = escaped = False
    for offset, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return offset
        elif char in "]}":
            depth -= 1
    return None


def _line_of_second(text: str, name: str) -> int:
    matches = list(re.finditer(re.escape(json.dumps(name)) + r"\s*:", text))
    position = matches[1].start() if len(matches) > 1 else 0
    return text.count("\n", 0, position) + 1


def _tidy(document: dict[str, Any]) -> dict[str, Any]:
    """Strip spaces around strings and accept a lower-case country code.

    Only spaces (Unicode Zs) are stripped: a line break or a control character at either end is
    refused by the text rule like anywhere else, not silently dropped.
    """
    tidy = {key: _strip_spaces(value) if isinstance(value, str) else value for key, value in document.items()}
    if isinstance(tidy.get("country"), str):
        tidy["country"] = tidy["country"].upper()
    return tidy


def _strip_spaces(value: str) -> str:
    start, end = 0, len(value)
    while start < end and unicodedata.category(value[start]) == "Zs":
        start += 1
    while end > start and unicodedata.category(value[end - 1]) == "Zs":
        end -= 1
    return value[start:end]


def _explain(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    place = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))
    if error.validator == "x-text":
        return f"{place}: {error.message}"
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


def _unknown_tasks(ctx: CampaignContext, fields: dict[str, Any], errors) -> list[tuple[list[Any], str]]:
    """The task ids that are no task of the campaign, when the schema found other problems too."""
    tasks = fields.get("tasks")
    if not isinstance(tasks, list):
        return []
    flagged = {tuple(e.absolute_path)[:2] for e in errors}
    campaign = ctx.campaign
    return [(["tasks", index], f"tasks[{index}]: {task_id!r} is not a task of {campaign.name} (tasks: {', '.join(campaign.task_ids)})")
            for index, task_id in enumerate(tasks)
            if isinstance(task_id, str) and task_id not in campaign.task_ids and ("tasks", index) not in flagged]


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
        elif (agreement := ctx.store.head(agreement_key(ctx, key))) is None:
            problems.append((["agreements", task_id], f"agreements.{task_id}: no file at {key}: upload your signed agreement there first"))
        elif agreement.size > MAX_AGREEMENT_BYTES:
            problems.append((["agreements", task_id], f"agreements.{task_id}: {key} is {agreement.size} bytes; a signed agreement PDF is at most {MAX_AGREEMENT_BYTES // 2**20} MiB"))
    for task_id in fields["tasks"]:
        if task_id in campaign.task_ids and campaign.task(task_id).requires_agreement and task_id not in agreements:
            problems.append((["tasks"], f"agreements: task {task_id!r} requires a signed user agreement: upload the signed PDF under {AGREEMENT_PREFIX} and give its key as agreements.{task_id}"))
    return problems


def agreement_key(ctx: CampaignContext, relative_key: str) -> str:
    return ctx.layout.agreement(relative_key[len(AGREEMENT_PREFIX):])


def _outside_window(ctx: CampaignContext, task_id: str, received_at: datetime) -> str | None:
    campaign = ctx.campaign
    opens = campaign.milestone_time("registration_opens", task_id)
    closes = campaign.milestone_time("registration_closes", task_id)
    arrived = local_and_utc_text(campaign, received_at)
    if received_at < opens:
        return f"registration for task {task_id} opens on {local_and_utc_text(campaign, opens)}; your registration arrived on {arrived}, before that: send it again once registration is open"
    if received_at > closes:
        return f"registration for task {task_id} closed on {local_and_utc_text(campaign, closes)}; your registration arrived on {arrived}, after that"
    return None


# --- intake --------------------------------------------------------------------------------------


def intake(ctx: CampaignContext) -> dict[str, Any]:
    """Handle every document in the inbox; see the module docstring."""
    notices = Notices(ctx)
    outcome = take_in_inbox(ctx, notices)
    _raise_if_kept(outcome, notices)
    notices.raise_if_failed("registration intake")
    return outcome


def take_in_inbox(ctx: CampaignContext, notices: Notices) -> dict[str, Any]:
    """Every inbox document, each on its own; never raises for one document (see :func:`handle_document`)."""
    directory = TeamDirectory(ctx)
    outcomes: dict[str, list[dict[str, Any]]] = {"accepted": [], "rejected": [], "kept": [], "gone": [], "awaiting_confirmation": []}
    store_failures = 0
    for document in inbox_documents(ctx):
        if store_failures >= STORE_FAILURES_BEFORE_STOPPING:
            outcomes["kept"].append({"status": "kept", "document": document.key, "reasons": [f"not tried: the store failed {store_failures} times in a row"]})
            continue
        outcome = handle_document(ctx, document, notices, directory)
        store_failures = store_failures + 1 if outcome["status"] == "kept" else 0
        outcomes[outcome["status"]].append(outcome)
    for problem in directory.unreadable:
        log.warning("registration intake: %s", problem)
    return {**outcomes, "unreadable_team_records": list(directory.unreadable), "mail": notices.summary()}


def _raise_if_kept(outcome: dict[str, Any], notices: Notices) -> None:
    if not outcome["kept"]:
        return
    lines = [f"registration intake: {len(outcome['kept'])} document(s) stay in the inbox for the next run ({len(outcome['accepted'])} accepted, {len(outcome['rejected'])} rejected):"]
    lines += [f"  {item['document']}: {'; '.join(item['reasons'])}" for item in outcome["kept"]]
    if notices.failed:
        lines.append(f"and {len(notices.failed)} e-mail(s) were not sent; a re-run sends them")
    raise IntakeError("\n".join(lines))


def handle_document(ctx: CampaignContext, document: InboxDocument, notices: Notices, directory: TeamDirectory) -> dict[str, Any]:
    """Take in one document. Whatever goes wrong with it stays with it: the intake goes on.

    A store failure leaves the document in the inbox (status ``kept``); any other error sets it
    aside in ``rejected/`` with the error and tells the organizers (:func:`set_aside`).
    """
    try:
        return take_in_document(ctx, document, notices, directory)
    except StoreError as error:
        return _keep_in_inbox(ctx, document, error)
    except Exception as error:  # noqa: BLE001 - one document must never stop the intake of the others
        return set_aside(ctx, document, error, notices, directory.recorded_from(document.document_id))


def take_in_document(ctx: CampaignContext, document: InboxDocument, notices: Notices, directory: TeamDirectory) -> dict[str, Any]:
    """Read, check, record and confirm one document (the normal path; errors are :func:`handle_document`'s)."""
    if document.size > MAX_DOCUMENT_BYTES:
        reason = f"{document.key}: {document.size} bytes; a registration is a JSON document of at most {MAX_DOCUMENT_BYTES // 1024} KiB (it was not read, and is not kept)"
        return _reject(ctx, document, None, [reason], None, notices)
    raw = ctx.store.get_bytes_at_most(document.key, MAX_DOCUMENT_BYTES)
    reading = read_registration(ctx, document.key, raw)
    if reading.problems:
        return _reject(ctx, document, raw, reading.problems, reading.contact_email, notices)
    fields = reading.fields
    lookalike = directory.lookalike(fields["team_name"])
    if lookalike is not None:
        return _reject(ctx, document, raw, [f"{document.key}, line {reading.line_of(['team_name'])}: {_lookalike_reason(fields['team_name'], lookalike)}"], reading.contact_email, notices)
    refused = {task_id: reason for task_id in fields["tasks"] if (reason := _outside_window(ctx, task_id, document.received_at))}
    open_tasks = [task_id for task_id in ctx.campaign.task_ids if task_id in fields["tasks"] and task_id not in refused]
    if not open_tasks:
        return _reject(ctx, document, raw, list(refused.values()), reading.contact_email, notices)
    # Proof of address (confirmation.py): no team is created or changed before the contact clicked.
    waiting = confirmation.awaiting_confirmation(ctx, document.key, document.received_at, raw, reading.contact_email, open_tasks, notices)
    if waiting == confirmation.EXPIRED:
        return _reject(ctx, document, raw, [confirmation.EXPIRED_REASON], None, notices)
    if waiting:
        return {"status": "awaiting_confirmation", "document": document.key, "tasks": open_tasks}
    failures_before = len(notices.failed)
    digests = _agreement_digests(ctx, fields, open_tasks)
    team = _record_team(ctx, fields, reading.contact_email, document, open_tasks, refused, digests, directory)
    directory.remember(team)
    namesakes = [other["team_id"] for other in directory.namesakes(team["team_name"]) if other["team_id"] != team["team_id"]]
    records = release_records(ctx, team["tasks"])
    _confirm(ctx, team, document, open_tasks, refused, records, notices, namesakes)
    flags = {task_id: team["agreement_flags"][task_id] for task_id in digests if task_id in team.get("agreement_flags", {})}
    if flags:
        _tell_organizers(ctx, document, [f"team {team['team_id']}, agreement for {task_id}: {flag}" for task_id, flag in flags.items()], list(flags), notices)
    data_sent = send_released_data(ctx, team, open_tasks, notices, records)
    if len(notices.failed) == failures_before:  # else keep it in the inbox: the next intake sends what is missing
        _move(ctx, document, raw, "accepted")
    return {"status": "accepted", "document": document.key, "team_id": team["team_id"], "tasks": open_tasks, "refused_tasks": refused,
            "agreement_flags": flags, "namesakes": namesakes, "released_data_sent": data_sent}


def _lookalike_reason(team_name: str, other: dict[str, Any]) -> str:
    return (
        f"team_name: {team_name!r} reads like the name of the registered team {other['team_id']} ({other['team_name']!r}) without being the same name; "
        "on a leaderboard nobody could tell them apart: choose a name that reads differently, or, to add tasks to that team, "
        "register with its name exactly as it is and its contact e-mail"
    )


def _agreement_digests(ctx: CampaignContext, fields: dict[str, Any], open_tasks: list[str]) -> dict[str, str]:
    """task -> sha256 of the signed agreement file this document gives for it (size checked when read)."""
    agreements = fields.get("agreements") or {}
    return {task_id: ctx.store.sha256(agreement_key(ctx, agreements[task_id])) for task_id in open_tasks if task_id in agreements}


def _keep_in_inbox(ctx: CampaignContext, document: InboxDocument, error: StoreError) -> dict[str, Any]:
    """The store failed while handling this document: leave it for the next run (or it was taken in by a concurrent intake)."""
    try:
        gone = ctx.store.head(document.key) is None
    except StoreError:
        gone = False
    if gone:
        return {"status": "gone", "document": document.key, "reasons": ["taken in by another intake running at the same time"]}
    log.warning("registration intake: %s stays in the inbox: %s", document.key, error)
    return {"status": "kept", "document": document.key, "reasons": [str(error)]}


def set_aside(ctx: CampaignContext, document: InboxDocument, error: BaseException, notices: Notices, recorded_teams: list[str] = ()) -> dict[str, Any]:
    """An error nobody foresaw: keep the document in ``rejected/`` with the error, tell the organizers, go on.

    ``recorded_teams``: teams whose record already took this document in before the error (the
    organizers are told to check them).
    """
    log.error("registration intake: %s set aside after an unexpected error", document.key, exc_info=error)
    reason = f"the intake could not handle this document ({type(error).__name__}: {_short(str(error))}); it was set aside for an organizer"
    frames = traceback.extract_tb(error.__traceback__)[-6:]
    if recorded_teams:
        reason += f"; it had already been recorded in the team record(s) {', '.join(recorded_teams)}: check them"
    record = {
        "document": document.key, "received_at": in_utc(document.received_at), "reasons": [reason], "answered": None,
        "error": {"type": type(error).__name__, "message": _short(str(error), 2000), "where": [f"{f.filename}:{f.lineno} in {f.name}" for f in frames]},
    }
    folder = ctx.layout.kept_document("rejected", document.document_id)
    failures_before = len(notices.failed)
    told = _tell_organizers(ctx, document, [reason, f"the error and where it happened are in {folder}reason.json"], [], notices)
    outcome = {"status": "rejected", "document": document.key, "reasons": [reason], "answered": None, "kept_at": None, "set_aside": True, "organizers_told": told}
    if len(notices.failed) > failures_before:
        return outcome  # the SMTP server did not answer: it stays in the inbox, and the next run tells them
    try:
        outcome["kept_at"] = _move(ctx, document, None, "rejected", record)
    except StoreError as store_error:
        return _keep_in_inbox(ctx, document, store_error)
    return outcome


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tell_organizers(ctx: CampaignContext, document: InboxDocument, findings: list[str], task_ids: list[str], notices: Notices) -> bool:
    """E-mail the organizers (of the campaign and of ``task_ids``) what needs their eyes in one document, once."""
    campaign = ctx.campaign
    try:
        for recipient in organizer_addresses(campaign, [t for t in task_ids if t in campaign.task_ids]):
            notices.send("registration-attention", document.document_id, recipient, document=document.key, document_id=document.document_id,
                         received=local_and_utc_text(campaign, document.received_at), findings=findings)
    except Exception:  # noqa: BLE001 - telling the organizers must not stop the intake either; the log keeps it
        log.exception("registration intake: could not tell the organizers about %s", document.key)
        return False
    return True


def _move(ctx: CampaignContext, document: InboxDocument, raw: bytes | None, outcome: str, reason: dict[str, Any] | None = None) -> str:
    """Keep the document as ``outcome`` (accepted, rejected: its bytes, or a server-side copy when unread) and take it out of the inbox."""
    folder = ctx.layout.kept_document(outcome, document.document_id)
    kept = lambda name: ctx.layout.kept_document_file(outcome, document.document_id, name)  # noqa: E731
    if raw is not None:
        put_bytes_if_changed(ctx.store, kept("registration.json"), raw, content_type="application/json")
    elif document.size <= MAX_DOCUMENT_BYTES:
        copy_if_changed(ctx.store, document.key, kept("registration.json"), document.etag)
    if reason is not None:
        put_json_if_changed(ctx.store, kept("reason.json"), {**reason, "size": document.size, "content_kept": raw is not None or document.size <= MAX_DOCUMENT_BYTES})
    ctx.store.delete(document.key)
    return folder


def _reject(ctx: CampaignContext, document: InboxDocument, raw: bytes | None, reasons: list[str], contact: str | None, notices: Notices) -> dict[str, Any]:
    campaign = ctx.campaign
    failures_before = len(notices.failed)
    if contact:
        notices.send(
            "registration-rejected", document.document_id, contact,  # the contact is unconfirmed: no text of the sender's
            document=utc_stamp(document.received_at), received=local_and_utc_text(campaign, document.received_at), reasons=confirmation.mail_safe_reasons(reasons),
            windows=[{"task": task, "opens": local_and_utc_text(campaign, campaign.milestone_time("registration_opens", task.id)),
                      "closes": local_and_utc_text(campaign, campaign.milestone_time("registration_closes", task.id))} for task in campaign.tasks],
        )
    reason = {"document": document.key, "received_at": in_utc(document.received_at), "reasons": reasons, "answered": contact}
    folder = None
    if len(notices.failed) == failures_before:
        folder = _move(ctx, document, raw, "rejected", reason)
    return {"status": "rejected", "document": document.key, "reasons": reasons, "answered": contact, "kept_at": folder}


def _record_team(ctx: CampaignContext, fields: dict[str, Any], contact: str, document: InboxDocument, open_tasks: list[str], refused: dict[str, str],
                 digests: dict[str, str], directory: TeamDirectory) -> dict[str, Any]:
    """Create or merge the team's record; same name and contact = same team, same name only = a new id."""
    normalised = normalise_team_name(fields["team_name"])
    base = team_slug(normalised)
    entry = {"document": document.document_id, "source_key": document.key, "received_at": in_utc(document.received_at), "tasks": open_tasks, "refused_tasks": refused}
    for number in itertools.count(1):
        team_id = base if number == 1 else f"{base}-{number}"
        existing = load_team(ctx, team_id)
        if existing is None:
            record = _new_record(ctx, team_id, normalised, fields, contact, entry, digests, directory)
            if ctx.store.create_json_once(ctx.layout.team_record(team_id), record):
                return record
            existing = load_team(ctx, team_id)  # another intake wrote it a moment ago
        if existing["normalized_name"] == normalised and existing["contact_email"].lower() == contact.lower():
            merged = _merge(ctx, existing, fields, entry, digests, directory)
            put_json_if_changed(ctx.store, ctx.layout.team_record(team_id), merged)
            return merged
    raise AssertionError("unreachable")


def _new_record(ctx: CampaignContext, team_id: str, normalised: str, fields: dict[str, Any], contact: str, entry: dict[str, Any],
                digests: dict[str, str], directory: TeamDirectory) -> dict[str, Any]:
    record = {"team_id": team_id, "team_name": fields["team_name"], "normalized_name": normalised, "contact_email": contact, "tasks": [], "agreements": {}, "registrations": []}
    return _merge(ctx, record, fields, entry, digests, directory)


def _merge(ctx: CampaignContext, record: dict[str, Any], fields: dict[str, Any], entry: dict[str, Any], digests: dict[str, str], directory: TeamDirectory) -> dict[str, Any]:
    if any(item["document"] == entry["document"] for item in record["registrations"]):
        return record  # this document was merged by an earlier, interrupted run
    tasks = set(record["tasks"]) | set(entry["tasks"])
    agreements = dict(record["agreements"])
    agreements.update({task: agreement_key(ctx, key) for task, key in (fields.get("agreements") or {}).items() if task in entry["tasks"]})
    merged = {
        **record,
        "affiliation": fields["affiliation"],
        "country": fields["country"],
        "contact_name": fields["contact_name"],
        "tasks": [task_id for task_id in ctx.campaign.task_ids if task_id in tasks],
        "agreements": dict(sorted(agreements.items())),
        "registrations": record["registrations"] + [entry],
    }
    if digests or record.get("agreement_sha256"):
        merged["agreement_sha256"] = dict(sorted({**record.get("agreement_sha256", {}), **digests}.items()))
        earlier = {task: flag for task, flag in record.get("agreement_flags", {}).items() if task not in digests}  # a new file replaces its flag
        merged["agreement_flags"] = dict(sorted({**earlier, **_agreement_flags(record["team_id"], digests, directory)}.items()))
    return merged


def _agreement_flags(team_id: str, digests: dict[str, str], directory: TeamDirectory) -> dict[str, str]:
    """task -> why its agreement file needs an organizer's eye: another team gave the very same file."""
    flags = {}
    for task_id, digest in digests.items():
        holders = directory.agreement_holders(digest, other_than=team_id)
        if holders:
            given = ", ".join(f"team {holder} for {task}" for holder, task in holders)
            flags[task_id] = f"the same file (sha256 {digest}) as the signed agreement of {given}: each team signs its own agreement"
    return flags


def _confirm(ctx: CampaignContext, team: dict[str, Any], document: InboxDocument, open_tasks: list[str], refused: dict[str, str],
             records: dict[tuple[str, str], dict[str, Any]], notices: Notices, namesakes: list[str]) -> None:
    campaign = ctx.campaign
    tasks = []
    flags = team.get("agreement_flags", {})
    for task_id in team["tasks"]:
        task = campaign.task(task_id)
        released = [split for split in SPLITS if (task_id, split) in records]
        tasks.append({"task": task, "new": task_id in open_tasks, "agreement": agreement_status(ctx, team, task_id), "agreement_reused": task_id in flags,
                      "released": released, "dates": task_dates(campaign, task_id)})
    notices.send("registration-confirmation", document.document_id, team["contact_email"], team=team, tasks=tasks, refused=refused, namesakes=namesakes,
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
        record = {"team": team_id, "task": task_id, **decision, "decided_at": in_utc(ctx.now()), "agreement": team["agreements"].get(task_id),
                  "agreement_sha256": (team.get("agreement_sha256") or {}).get(task_id), "agreement_flag": (team.get("agreement_flags") or {}).get(task_id), "history": history}
        put_json_if_changed(ctx.store, key, record)
    notices = Notices(ctx)
    decided_at = datetime.fromisoformat(record["decided_at"])
    notices.send("agreement-decision", f"{task_id}.{team_id}.{utc_stamp(decided_at)}", team["contact_email"], team=team, task=task, decision=record, dates=task_dates(ctx.campaign, task_id))
    data_sent = send_released_data(ctx, team, [task_id], notices) if record["approved"] else []
    notices.raise_if_failed(f"agreement decision for {team_id} on {task_id}")
    return {"team": team_id, "task": task_id, "approved": record["approved"], "decided_by": record["decided_by"], "decided_at": record["decided_at"], "record_key": key, "released_data_sent": data_sent, "mail": notices.summary()}


def decide_agreements(ctx: CampaignContext, team_id: str, task_ids: list[str], approved: bool, decided_by: str, note: str = "") -> list[dict[str, Any]]:
    """One organizer decision for several tasks of a team: every (team, task) is checked before any is recorded.

    A typo in one task records nothing; an e-mail that cannot be sent for one task does not keep
    the others undecided (each decision is recorded before its e-mail, and a re-run sends what is missing).
    """
    if not task_ids:
        raise RegistrationError("no task given: name the tasks whose signed agreement you checked")
    problems = []
    for task_id in task_ids:
        try:
            _team_and_task(ctx, team_id, task_id)
        except RegistrationError as error:
            problems.append(str(error))
    if problems:
        raise RegistrationError("nothing was decided:\n  " + "\n  ".join(problems))
    results, failures = [], []
    for task_id in task_ids:
        try:
            results.append(decide_agreement(ctx, team_id, task_id, approved, decided_by, note))
        except DeliveryError as error:
            failures.append(str(error))
    if failures:
        raise DeliveryError(f"{len(task_ids)} decision(s) recorded; some e-mails were not sent:\n" + "\n".join(failures))
    return results


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
        notices.send("announcement", f"registration_opens.{utc_stamp(opens_at)}", recipient, tasks=listing, opens=local_and_utc_text(campaign, opens_at), fields=schema["required"], inbox=ctx.layout.registrations_inbox(), agreement_prefix=ctx.layout.agreements())
    notices.raise_if_failed("registration announcement")
    return {"tasks": list(task_ids), "recipients": recipients, "mail": notices.summary()}


def close(ctx: CampaignContext, task_ids: list[str]) -> dict[str, Any]:
    """Final intake, frozen team list (CSV + sha256), a per-task summary e-mailed to the organizers."""
    campaign = ctx.campaign
    notices = Notices(ctx)
    final_intake = take_in_inbox(ctx, notices)
    _raise_if_kept(final_intake, notices)  # never freeze a list without documents the store could not give us
    closes_at = max(campaign.milestone_time("registration_closes", task_id) for task_id in task_ids)
    stamp = utc_stamp(closes_at)
    teams = [team for team in all_teams(ctx) if any(task_id in team["tasks"] for task_id in task_ids)]
    snapshot_key = ctx.layout.registrations_snapshot(stamp)
    data = snapshot_csv(teams, task_ids)
    frozen_now = ctx.store.create_once(snapshot_key, data, content_type="text/csv")
    frozen = data if frozen_now else ctx.store.get_bytes(snapshot_key)  # frozen at the first close: kept as it was
    digest = hashlib.sha256(frozen).hexdigest()
    ctx.store.create_once(snapshot_key + ".sha256", f"{digest}  {snapshot_key.rsplit('/', 1)[1]}\n".encode(), content_type="text/plain")
    summary = [_task_summary(ctx, teams, task_id) for task_id in task_ids]
    rejected = ctx.store.list_folders(ctx.layout.registrations_rejected())  # one folder per refused document
    for recipient in organizer_addresses(campaign, task_ids):
        notices.send("registration-summary", f"registration_closes.{stamp}", recipient, tasks=summary, team_count=len(teams), snapshot_key=snapshot_key, sha256=digest,
                     closed=local_and_utc_text(campaign, closes_at), rejected_count=len(rejected), rejected_prefix=ctx.layout.registrations_rejected())
    notices.raise_if_failed("registration closing")
    return {
        "tasks": list(task_ids),
        "final_intake": {"accepted": len(final_intake["accepted"]), "rejected": len(final_intake["rejected"]), **({"set_aside": n} if (n := sum(1 for r in final_intake["rejected"] if r.get("set_aside"))) else {})},
        "snapshot_key": snapshot_key,
        "sha256": digest,
        "snapshot_differs_from_current": frozen != data,
        "teams_per_task": {item["task"].id: item["count"] for item in summary},
        "mail": notices.summary(),
    }


def snapshot_csv(teams: list[dict[str, Any]], task_ids: list[str]) -> bytes:
    """One row per (team, task) of the closing tasks, sorted: the same teams give the same bytes.

    Every cell goes through the leaderboards' :func:`spreadsheet_safe`: a team named ``=HYPERLINK(…)``
    is text, not a formula, when an organizer opens the list in a spreadsheet.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SNAPSHOT_COLUMNS)
    for team in sorted(teams, key=lambda t: t["team_id"]):
        for task_id in task_ids:
            if task_id in team["tasks"]:
                first = next((r["received_at"] for r in team["registrations"] if task_id in r["tasks"]), "")
                row = [team["team_id"], team["team_name"], team["affiliation"], team["country"], team["contact_name"], team["contact_email"], task_id, team["agreements"].get(task_id, ""), first]
                writer.writerow([spreadsheet_safe(str(cell)) for cell in row])
    return buffer.getvalue().encode("utf-8")


def _task_summary(ctx: CampaignContext, teams: list[dict[str, Any]], task_id: str) -> dict[str, Any]:
    members = [{"team": team, "agreement": agreement_status(ctx, team, task_id), "flag": (team.get("agreement_flags") or {}).get(task_id)} for team in teams if task_id in team["tasks"]]
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
