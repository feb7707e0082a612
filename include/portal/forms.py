"""The registration form: the schema's fields, checked field by field before anything is stored.

:func:`check_registration` turns the submitted form into exactly the document intake reads
(``include/schemas/_registration.yaml``) or into messages per field: the schema's own ``x-message``
texts, the campaign's tasks and registration periods, and the signed agreement each task needs.
:func:`store_registration` then writes the agreement PDFs and the document under keys the server
chooses (``registrations/inbox/<stamp>-<random>.json``): a visitor's file names are never used.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from email_validator import EmailNotValidError, validate_email

from include.campaign.context import CampaignContext
from include.campaign.layout import UnsafeKeyError, segment
from include.campaign.registration import AGREEMENT_PREFIX, read_registration, registration_validator
from include.campaign.teams import local_and_utc_text, utc_stamp
from include.portal.settings import Limits

TEXT_FIELDS = ("team_name", "affiliation", "country", "contact_name", "contact_email")
PDF_MAGIC = b"%PDF-"


@dataclass
class RegistrationForm:
    values: dict[str, str]  # what the visitor typed, shown again in the form
    tasks: list[str]
    agreements: dict[str, bytes]  # task -> PDF bytes
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def check_registration(ctx: CampaignContext, form: RegistrationForm, limits: Limits) -> dict[str, Any] | None:
    """The registration document, or None with ``form.errors`` filled (field -> messages)."""
    document: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = form.values.get(name, "").strip()
        if len(value) > limits.field_chars:  # before any other rule reads it
            form.add(name, f"is {len(value)} characters long; at most {limits.field_chars} are accepted here")
        document[name] = value.upper() if name == "country" else value
    document["tasks"] = list(dict.fromkeys(form.tasks))
    _schema_messages(document, form)
    _contact_message(document.get("contact_email", ""), form)
    _task_messages(ctx, document["tasks"], form)
    agreements = _agreement_messages(ctx, document["tasks"], form, limits)
    if form.errors:
        return None
    if agreements:
        document["agreements"] = agreements
    return document


def _schema_messages(document: dict[str, Any], form: RegistrationForm) -> None:
    """The schema's messages, with intake's own validator (its ``x-text`` rules on characters and scripts)."""
    errors = sorted(registration_validator().iter_errors(document), key=lambda e: e.validator != "x-text")  # the precise one first
    for error in errors:
        path = list(error.absolute_path)
        name = str(path[0]) if path else "form"
        if name in form.errors:
            continue  # one message per field is enough; the first is the clearest
        if error.validator == "required":
            form.add(name if path else "form", "is required")
            continue
        if error.validator == "x-text":
            form.add(name, error.message)  # which character or which scripts, in intake's words
            continue
        rule = error.schema.get("x-message") if isinstance(error.schema, dict) else None
        form.add(name, rule or error.message if name != "tasks" else "choose one or more tasks of the campaign, each once")


def _contact_message(value: str, form: RegistrationForm) -> None:
    if not value or "contact_email" in form.errors:
        return
    try:
        address = validate_email(value, check_deliverability=False).normalized
        segment(address.lower())
    except EmailNotValidError as exc:
        form.add("contact_email", f"is not a usable e-mail address: {exc}")
    except UnsafeKeyError:
        form.add("contact_email", "please use an address made of letters, digits and . _ @ + = - only")


def _task_messages(ctx: CampaignContext, task_ids: list[str], form: RegistrationForm) -> None:
    campaign = ctx.campaign
    now = ctx.now()
    for task_id in task_ids:
        if task_id not in campaign.task_ids:
            form.add("tasks", "one of the chosen tasks is not a task of this campaign; choose among the tasks listed")
            continue
        opens = campaign.milestone_time("registration_opens", task_id)
        closes = campaign.milestone_time("registration_closes", task_id)
        if now < opens:
            form.add("tasks", f"registration for {task_id} opens on {local_and_utc_text(campaign, opens)}")
        elif now > closes:
            form.add("tasks", f"registration for {task_id} closed on {local_and_utc_text(campaign, closes)}")


def _agreement_messages(ctx: CampaignContext, task_ids: list[str], form: RegistrationForm, limits: Limits) -> dict[str, str]:
    """Check each needed PDF; returns task -> the document's ``agreements`` value (keys fixed later)."""
    needed = [t for t in task_ids if t in ctx.campaign.task_ids and ctx.campaign.task(t).requires_agreement]
    for task_id in sorted(set(form.agreements) - set(needed)):
        form.agreements.pop(task_id)  # a file for a task not chosen, or not needing one: ignored, never stored
    for task_id in needed:
        data = form.agreements.get(task_id)
        name = f"agreement_{task_id}"
        if not data:
            form.add(name, "this task requires the signed user agreement: attach it as a PDF")
        elif len(data) > limits.agreement_bytes:
            form.add(name, f"the file is {len(data)} bytes; a signed agreement may be at most {limits.agreement_bytes // (1024 * 1024)} MiB")
        elif not data.startswith(PDF_MAGIC):
            form.add(name, "the file is not a PDF (it does not start with %PDF-): scan or print the signed agreement to PDF")
    return {task_id: "" for task_id in needed}


def store_registration(ctx: CampaignContext, document: dict[str, Any], agreements: dict[str, bytes]) -> tuple[str, bytes, list[str]]:
    """Write the agreements and the document; returns (document key, its bytes, problems).

    The document is checked once more by intake's own reader before it is written; should that
    refuse it, the agreements just written are removed and nothing is left behind.
    """
    name = f"{utc_stamp(ctx.now())}-{secrets.token_hex(8)}"
    written = []
    for task_id in document.get("agreements", {}):
        relative = f"{AGREEMENT_PREFIX}{name}-{task_id}.pdf"
        key = ctx.layout.agreement(f"{name}-{task_id}.pdf")
        ctx.store.put_bytes(key, agreements[task_id], content_type="application/pdf")
        written.append(key)
        document["agreements"][task_id] = relative
    key = ctx.layout.inbox_document(name)
    raw = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
    problems = read_registration(ctx, key, raw).problems
    if problems:
        for written_key in written:
            ctx.store.delete(written_key)
        return key, raw, problems
    ctx.store.put_bytes(key, raw, content_type="application/json")
    return key, raw, []

