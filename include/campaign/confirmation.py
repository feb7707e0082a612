"""Proof of address and team sign-in: signed, expiring tokens, confirmation records, revocations.

Anyone can put a registration in the inbox naming any e-mail address. Before intake creates or
changes a team from a document, the document's contact must open a confirmation link sent to that
address: :func:`awaiting_confirmation` is intake's hook. It sends the link once per document (the
outbox) and keeps the document in the inbox until :func:`confirm` recorded the click under
``registrations/confirmations/<digest>.json``; a document not confirmed within
:data:`CONFIRM_HOURS` is refused without another e-mail. A confirmation binds the document's key,
its exact bytes and the address, so a document changed afterwards needs a new confirmation.

Teams sign in to the participants' portal with e-mailed links (no passwords): a ``sign-in`` token
names the campaign and the team, expires after :data:`SIGN_IN_DAYS`, and can be revoked by an
organizer (:func:`revoke_sign_in` writes ``registrations/sign-in/<team>.json``; every token issued
before it stops working). Tokens are ``<payload>.<signature>``: URL-safe base64 of a small JSON
payload and its HMAC-SHA256 under ``CLEF_PORTAL_SECRET`` (from the environment, never committed).

The e-mails here never carry text a registrant typed: an unconfirmed address receives only the
campaign's own words, and :func:`mail_safe_reasons` turns intake's refusal reasons (which quote the
document) into the schema's fixed messages.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any

from include.campaign.context import CampaignContext
from include.campaign.layout import UnsafeKeyError, segment
from include.campaign.teams import Notices, local_and_utc_text, in_utc, load_team

CONFIRM_HOURS = 72
SIGN_IN_DAYS = 7
SESSION_HOURS = 12
MIN_SECRET_LENGTH = 32
CONFIRM, SIGN_IN, SESSION = "confirm", "sign-in", "session"
EXPIRED = "expired"
EXPIRED_REASON = f"the contact address was not confirmed within {CONFIRM_HOURS} hours: nothing was registered; register again"
SECRET_VARIABLE, URL_VARIABLE = "CLEF_PORTAL_SECRET", "CLEF_PORTAL_URL"


class TokenError(ValueError):
    """A token that cannot be used; the message says why in words a participant understands."""


class PortalNotConfigured(RuntimeError):
    """``CLEF_PORTAL_SECRET`` or ``CLEF_PORTAL_URL`` is missing or too weak."""


# --- signing -------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """HMAC-SHA256 tokens with a purpose, a campaign, a subject, an issue time and an expiry."""

    def __init__(self, secret: str):
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
            raise PortalNotConfigured(f"{SECRET_VARIABLE} must be a random string of at least {MIN_SECRET_LENGTH} characters")
        self._key = hashlib.sha256(b"clef-portal-token\0" + secret.encode("utf-8")).digest()

    def _signature(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def sign(self, purpose: str, campaign_id: str, subject: dict[str, str], lifetime: dt.timedelta, now: dt.datetime) -> str:
        issued = int(now.timestamp() * 1000)
        body = {"p": purpose, "c": campaign_id, "s": subject, "iat": issued, "exp": issued + int(lifetime.total_seconds() * 1000), "n": secrets.token_hex(6)}
        payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8"))
        return f"{payload}.{self._signature(payload)}"

    def verify(self, token: str, purpose: str, campaign_id: str, now: dt.datetime) -> dict[str, Any]:
        """The payload of a genuine, unexpired token of this purpose and campaign, else :class:`TokenError`."""
        if not isinstance(token, str) or len(token) > 2048 or not re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token):
            raise TokenError("this link is incomplete or damaged: copy the whole link from the e-mail, or ask for a new one")
        payload, signature = token.split(".")
        if not hmac.compare_digest(signature, self._signature(payload)):
            raise TokenError("this link was not issued by this portal (its signature does not match): ask for a new one")
        try:
            body = json.loads(_unb64(payload))
        except (binascii.Error, ValueError):
            raise TokenError("this link is damaged: ask for a new one") from None
        if body.get("p") != purpose or body.get("c") != campaign_id:
            raise TokenError("this link is for another page or another campaign")
        if int(body.get("exp", 0)) < now.timestamp() * 1000:
            raise TokenError("this link has expired: ask for a new one")
        return body


@dataclass(frozen=True)
class PortalLinks:
    """What the stages need to put portal links in e-mails: the signer and the portal's address."""

    signer: TokenSigner
    base_url: str

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "PortalLinks":
        env = os.environ if environ is None else environ
        base = (env.get(URL_VARIABLE) or "").strip().rstrip("/")
        if not re.match(r"^https?://[^\s/]+", base):
            raise PortalNotConfigured(f"{URL_VARIABLE} must be the portal's public address, e.g. https://portal.example.org (got {base or 'nothing'})")
        return cls(TokenSigner(env.get(SECRET_VARIABLE, "")), base)

    def campaign_url(self, campaign_id: str, page: str, token: str | None = None) -> str:
        url = f"{self.base_url}/c/{segment(campaign_id)}/{page}"
        return f"{url}?token={token}" if token else url


# --- proof of address ------------------------------------------------------------------------------


def document_digest(document_key: str, raw: bytes) -> str:
    """One document version: its key and its exact bytes."""
    return hashlib.sha256(document_key.encode("utf-8") + b"\n" + hashlib.sha256(raw).digest()).hexdigest()


def is_confirmed(ctx: CampaignContext, document_key: str, raw: bytes, contact: str) -> bool:
    key = ctx.layout.confirmation_record(document_digest(document_key, raw))
    if ctx.store.head(key) is None:
        return False
    return str(ctx.store.get_json(key).get("contact_email", "")).lower() == contact.lower()


def record_confirmation(ctx: CampaignContext, digest: str, contact: str, how: str) -> bool:
    """Write the proof once (a second click changes nothing); True when written now."""
    record = {"digest": digest, "contact_email": contact, "confirmed_at": in_utc(ctx.now()), "how": how}
    return ctx.store.create_json_once(ctx.layout.confirmation_record(segment(digest)), record)


def confirm(ctx: CampaignContext, signer: TokenSigner, token: str) -> dict[str, Any]:
    """The contact opened its link: record the proof; returns ``{"digest", "contact_email", "new"}``."""
    body = signer.verify(token, CONFIRM, ctx.campaign.id, ctx.now())
    digest, contact = str(body["s"].get("d", "")), str(body["s"].get("e", ""))
    if not re.fullmatch(r"[0-9a-f]{64}", digest) or "@" not in contact:
        raise TokenError("this link is damaged: ask for a new one")
    return {"digest": digest, "contact_email": contact, "new": record_confirmation(ctx, digest, contact, "confirmation link")}


def awaiting_confirmation(ctx: CampaignContext, document_key: str, received_at: dt.datetime, raw: bytes, contact: str,
                          task_ids: list[str], notices: Notices) -> str | None:
    """Intake's hook: None when the contact proved its address, else ``"awaiting"`` or :data:`EXPIRED`.

    While awaiting, the contact receives the confirmation link once (outbox); a portal that is not
    configured is reported as a failed delivery, so the stage fails loudly and keeps the document.
    """
    if is_confirmed(ctx, document_key, raw, contact):
        return None
    if ctx.now() - received_at > dt.timedelta(hours=CONFIRM_HOURS):
        return EXPIRED
    send_confirmation_request(ctx, document_key, received_at, raw, contact, task_ids, notices)
    return "awaiting"


def send_confirmation_request(ctx: CampaignContext, document_key: str, received_at: dt.datetime, raw: bytes, contact: str,
                              task_ids: list[str], notices: Notices) -> bool:
    """The one e-mail an unconfirmed address receives: fixed text, the tasks (ids of the campaign) and the link."""
    digest = document_digest(document_key, raw)
    try:
        links = PortalLinks.from_env()
    except PortalNotConfigured as problem:
        notices.failed.append({"purpose": "address-confirmation", "milestone": digest[:32], "recipient": contact, "error": f"cannot make a confirmation link: {problem}"})
        return False
    expires = received_at + dt.timedelta(hours=CONFIRM_HOURS)
    token = links.signer.sign(CONFIRM, ctx.campaign.id, {"d": digest, "e": contact}, expires - ctx.now(), ctx.now())
    tasks = [ctx.campaign.task(task_id) for task_id in task_ids if task_id in ctx.campaign.task_ids]
    return notices.send("address-confirmation", digest[:32], contact, link=links.campaign_url(ctx.campaign.id, "confirm", token),
                        tasks=tasks, received=local_and_utc_text(ctx.campaign, received_at), expires=local_and_utc_text(ctx.campaign, expires))


# --- sign-in ---------------------------------------------------------------------------------------


def sign_in_link(ctx: CampaignContext, team_id: str) -> str | None:
    """A fresh sign-in link for the team, or None when the portal is not configured."""
    try:
        links = PortalLinks.from_env()
    except PortalNotConfigured:
        return None
    token = links.signer.sign(SIGN_IN, ctx.campaign.id, {"t": team_id}, dt.timedelta(days=SIGN_IN_DAYS), ctx.now())
    return links.campaign_url(ctx.campaign.id, "sign-in", token)


def send_sign_in_link(ctx: CampaignContext, team: dict[str, Any], notices: Notices) -> bool:
    """E-mail the team's contact a new sign-in link; at most one per team and hour (outbox)."""
    link = sign_in_link(ctx, team["team_id"])
    if link is None:
        notices.failed.append({"purpose": "sign-in-link", "milestone": team["team_id"], "recipient": team["contact_email"], "error": "the portal is not configured"})
        return False
    hour = ctx.now().astimezone(dt.timezone.utc).strftime("%Y%m%dT%HZ")
    return notices.send("sign-in-link", f"{team['team_id']}.{hour}", team["contact_email"], team=team, link=link, days=SIGN_IN_DAYS)


def team_of_token(ctx: CampaignContext, signer: TokenSigner, token: str, purpose: str) -> dict[str, Any]:
    """The team a sign-in or session token opens, after expiry, revocation and existence checks."""
    body = signer.verify(token, purpose, ctx.campaign.id, ctx.now())
    team_id = str(body["s"].get("t", ""))
    try:
        team = load_team(ctx, team_id)
    except UnsafeKeyError:
        team = None
    if team is None:
        raise TokenError("this link names no registered team")
    revocation = revocation_record(ctx, team_id)
    if revocation is not None and body["iat"] <= int(revocation["revoked_before_ms"]):
        raise TokenError("this link was withdrawn by the organizers: ask for a new one with your contact address")
    return team


def session_token(ctx: CampaignContext, signer: TokenSigner, team_id: str) -> str:
    return signer.sign(SESSION, ctx.campaign.id, {"t": team_id}, dt.timedelta(hours=SESSION_HOURS), ctx.now())


def revocation_record(ctx: CampaignContext, team_id: str) -> dict[str, Any] | None:
    key = ctx.layout.sign_in_revocation(team_id)
    return ctx.store.get_json(key) if ctx.store.head(key) is not None else None


def revoke_sign_in(ctx: CampaignContext, team_id: str, decided_by: str, reason: str) -> dict[str, Any]:
    """Withdraw every sign-in link and session of the team issued until now (an organizer's decision)."""
    if load_team(ctx, team_id) is None:
        raise TokenError(f"no team {team_id!r} in {ctx.campaign.id}")
    if not str(decided_by).strip():
        raise ValueError("decided_by is empty: say who revokes, so the decision can be traced")
    previous = revocation_record(ctx, team_id)
    now = ctx.now()
    record = {"team": team_id, "revoked_before": in_utc(now), "revoked_before_ms": int(now.timestamp() * 1000), "decided_by": str(decided_by).strip(),
              "reason": str(reason).strip(), "history": ((previous or {}).get("history", []) + [{k: v for k, v in previous.items() if k != "history"}]) if previous else []}
    ctx.store.put_json(ctx.layout.sign_in_revocation(team_id), record)
    return record


# --- what a refusal e-mail may say -------------------------------------------------------------------

_WINDOW_REASON = re.compile(r"^registration for task [a-z0-9-]+ (opens|closed) on [0-9: ()A-Za-z+-]+")
_FIELD_AFTER_LINE = re.compile(r", (?P<line>line \d+)(, column \d+)?: (?P<field>[a-z_]+)\b")
_LINE = re.compile(r", (line \d+)(, column \d+)?: ")


def mail_safe_reasons(reasons: list[str]) -> list[str]:
    """Refusal reasons with nothing the registrant typed: the field and the schema's own rule.

    Intake's reasons quote values and the document's name (useful in ``reason.json`` for the
    organizers); an e-mail to an address nobody confirmed may only carry the campaign's words.
    """
    from include.campaign.registration import registration_schema

    properties = registration_schema()["properties"]
    safe: list[str] = []
    for reason in reasons:
        if _WINDOW_REASON.match(reason):
            safe.append(reason if re.fullmatch(r"[A-Za-z0-9 :()+.,;-]+", reason) else "the registration arrived outside the registration period")
            continue
        match = _FIELD_AFTER_LINE.search(reason)
        field = match.group("field") if match else None
        line = _LINE.search(reason)
        where = f"{line.group(1)}: " if line else ""  # a line number is the campaign's words too
        detail = _generated_detail(reason, field) if field in properties else None
        if detail:
            safe.append(f"{where}{field}: {detail}")
        elif field in properties:
            rule = properties[field].get("x-message") or properties[field].get("description") or "does not follow the registration rules"
            safe.append(f"{where}{field}: {rule}")
        elif "not valid JSON" in reason or "not UTF-8" in reason:
            safe.append(f"{where}the document is not a UTF-8 JSON object")
        elif "missing required field" in reason:
            missing = re.search(r"missing required field ([a-z_]+)", reason)
            name = missing.group(1) if missing and missing.group(1) in properties else None
            safe.append(f"{where}missing required field {name}" if name else f"{where}a required field is missing")
        else:
            safe.append(f"{where}the document does not follow the registration rules (fields: " + ", ".join(properties) + ")")
    return list(dict.fromkeys(safe))


def _generated_detail(reason: str, field: str) -> str | None:
    """The part of a reason the campaign wrote itself about a field's characters (code point, Unicode
    name, category, rule) or scripts, which quotes nothing the registrant typed; else None."""
    from include.campaign.registration import TEXT_RULE

    text = reason.split(f": {field}: ", 1)[-1]
    character = re.fullmatch(r"character \d+ is U\+[0-9A-F]{4,6}( [A-Z0-9 -]+)?, (a control character|an invisible format character|a line separator|"
                             r"a paragraph separator|a lone surrogate|a private-use character): (?P<rule>.*)", text)
    if character and character.group("rule") == TEXT_RULE:
        return text
    if re.fullmatch(r"mixes letters of the scripts [A-Za-z, -]+, which makes it look like another name; write it in one script", text):
        return text
    return None
