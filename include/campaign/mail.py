"""E-mail: Jinja2 templates, an SMTP sender, and an outbox that sends each message at most once.

A template in ``include/templates/mail/<purpose>.txt.j2`` renders to ``Subject: …``, a blank line,
then the body. The subject and every other header value is one line, whatever the values put in it
(line breaks, U+2028, U+0085, vertical tabs... become spaces).

:class:`Outbox` keys each message by (campaign, purpose, milestone, recipient) and **claims** the key
with a create-once write before talking to the server, so two stages or two workers never send the
same message: the one that loses the claim sends nothing. After the attempt the marker says what
happened (``status``):

- ``sent``: the server accepted the message;
- ``undeliverable``: the server refused the address for good (a 5xx reply): never retried;
- ``unknown``: the message body was handed over but the server never confirmed it (the connection
  dropped or timed out after ``DATA``). It may have arrived, so it is not sent again by itself;
  the stage reports it to the organizers, who delete the marker to have it sent again;
- a transient failure (no connection, a 4xx reply before the body) releases the claim (the marker
  is deleted), so the next try of the stage sends it.

Each message's ``Message-ID`` is derived from its outbox key, so even a message sent again by hand
is recognised as the same message by mail clients.

:class:`SmtpSender` bounds every wait (``connect_timeout`` for the TCP connection, ``timeout`` for
each reply of the server), retries only what cannot have been delivered (a refused connection, a
4xx reply before the body), and never retries a server that did not answer in time.
"""
from __future__ import annotations

import datetime as dt
import email.policy
import hashlib
import json
import os
import re
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from include.campaign.layout import Layout, UnsafeKeyError
from include.campaign.store import ObjectStore, StoreError

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"

# What a mail client or server may read as the end of a header line, or that has no place in one:
# C0 and C1 controls (CR, LF, VT, FF, U+0085 NEL...), DEL, and the Unicode line and paragraph separators.
_NOT_IN_A_HEADER = re.compile(r"\r\n|[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A newline that a template value (not the template text) brought into the rendered message.
_VALUE_NEWLINE = "\ue000"

# What happened to one message (the outbox marker's ``status``, :class:`MailError`'s ``kind``).
SENT, UNDELIVERABLE, UNKNOWN, IN_PROGRESS = "sent", "undeliverable", "unknown", "in progress"
REFUSED, TRANSIENT, CONNECTION = "refused", "transient", "connection"


class MailError(RuntimeError):
    """A message could not be sent; the text names the server, the recipient and the reason.

    ``kind`` says what to do about it:

    - ``refused``: the server refused for good (a 5xx reply such as an unknown mailbox) or the
      address is not one a message can be sent to; retrying will not help (``permanent`` is True);
    - ``transient``: the server asked to try later (a 4xx reply); other messages may still go;
    - ``connection``: the server could not be reached, stopped answering, or refused the sender or
      the account (not the recipient) before the message was handed over; nothing was delivered,
      and the next message would most likely fail the same way;
    - ``unknown``: the connection failed after the message body was sent: it may have arrived.
    """

    def __init__(self, message: str, permanent: bool = False, code: int | None = None, kind: str | None = None):
        super().__init__(message)
        self.kind = kind or (REFUSED if permanent else TRANSIENT)
        self.permanent = self.kind == REFUSED
        self.code = code

    @property
    def connection_level(self) -> bool:
        """True when the server itself failed (not this one message): stop sending for now."""
        return self.kind in (CONNECTION, UNKNOWN)


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    """Templates for mail (plain text) and pages (HTML, autoescaped)."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=1)
def _mail_environment() -> Environment:
    """Plain-text mail templates: a value's own newlines are marked, so they can never end the subject line."""
    environment = template_environment().overlay(finalize=_mark_value_newlines)
    return environment


def _mark_value_newlines(value: Any) -> Any:
    return value.replace("\n", _VALUE_NEWLINE) if isinstance(value, str) else value


def one_line(value: Any) -> str:
    """A header value on one line: each control character or line separator becomes a space."""
    return _NOT_IN_A_HEADER.sub(" ", str(value)).strip()


def checked_address(address: Any) -> str:
    """An address a message can be sent to, or a permanent :class:`MailError` saying why not."""
    text = str(address or "").strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or _NOT_IN_A_HEADER.search(text) or any(c.isspace() or c in ',;<>()"' for c in text):
        raise MailError(f"cannot send to {text!r}: not an e-mail address a message can be sent to", kind=REFUSED)
    return text


@dataclass(frozen=True)
class Mail:
    recipient: str
    subject: str
    body: str
    reply_to: str | None = None
    cc: tuple[str, ...] = ()


def render_mail(purpose: str, recipient: str, **context: Any) -> Mail:
    """Render ``mail/<purpose>.txt.j2``: its first line is ``Subject: …``, the rest is the body.

    A value with line breaks (a team name with a newline, say) stays on the subject line, as spaces.
    """
    name = f"mail/{purpose}.txt.j2"
    text = _mail_environment().get_template(name).render(recipient=recipient, **context)
    head, _, body = text.partition("\n")
    if not head.startswith("Subject:"):
        raise ValueError(f"template {name} must start with a 'Subject:' line")
    reply_to = context.get("reply_to")
    return Mail(
        recipient=recipient,
        subject=one_line(head[len("Subject:"):].replace(_VALUE_NEWLINE, "\n")),
        body=body.lstrip("\n").replace(_VALUE_NEWLINE, "\n"),
        reply_to=str(reply_to) if reply_to else None,
    )


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "clef-campaign@localhost"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    use_ssl: bool = False
    timeout: float = 30.0  # the longest wait for any one reply of the server (a read timeout)
    attempts: int = 3
    backoff_seconds: float = 0.5
    connect_timeout: float = 10.0  # the longest wait for the TCP (and TLS) connection

    @classmethod
    def from_connection(cls, *, host: str, port: int | None, login: str | None, password: str | None, extra: dict[str, Any] | None) -> "SmtpSettings":
        """From an Airflow ``smtp`` connection's fields (the DAG layer reads the connection).

        ``extra`` may give ``timeout`` (or ``read_timeout``) and ``connect_timeout`` in seconds.
        """
        extra = extra or {}
        return cls(
            host=host,
            port=int(port or 25),
            sender=extra.get("from_email") or extra.get("sender") or "clef-campaign@localhost",
            username=login or None,
            password=password or None,
            starttls=not _truthy(extra.get("disable_tls", True)),
            use_ssl=not _truthy(extra.get("disable_ssl", True)),
            timeout=float(extra.get("read_timeout", extra.get("timeout", 30))),
            attempts=max(1, int(extra.get("retry_limit", 3))),
            connect_timeout=float(extra.get("connect_timeout", 10)),
        )

    @classmethod
    def from_connection_json(cls, text: str) -> "SmtpSettings":
        data = json.loads(text)
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra else {}
        return cls.from_connection(host=data.get("host", "localhost"), port=data.get("port"), login=data.get("login"), password=data.get("password"), extra=extra)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "SmtpSettings":
        env = os.environ if environ is None else environ
        if env.get("AIRFLOW_CONN_SMTP_DEFAULT", "").lstrip().startswith("{"):
            return cls.from_connection_json(env["AIRFLOW_CONN_SMTP_DEFAULT"])
        return cls(host=env.get("CLEF_SMTP_HOST", "localhost"), port=int(env.get("CLEF_SMTP_PORT", "25")), sender=env.get("CLEF_MAIL_FROM", "clef-campaign@localhost"),
                   timeout=float(env.get("CLEF_SMTP_TIMEOUT", "30")), connect_timeout=float(env.get("CLEF_SMTP_CONNECT_TIMEOUT", "10")))

    def longest_attempt_seconds(self) -> float:
        """The longest one attempt may take: the connection and a full wait for each reply of a conversation."""
        replies = 8  # greeting, EHLO, STARTTLS + EHLO or AUTH, MAIL, RCPT, DATA, end of data
        return self.connect_timeout + replies * self.timeout

    def longest_send_seconds(self) -> float:
        """An upper bound of one :meth:`SmtpSender.send`: every attempt, and the pauses between them."""
        pauses = sum(self.backoff_seconds * 2**attempt for attempt in range(self.attempts - 1))
        return self.attempts * self.longest_attempt_seconds() + pauses


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def message_id_for(key: str, sender: str) -> str:
    """A Message-ID that is the same for every attempt at the message of one outbox key."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
    domain = re.sub(r"[^A-Za-z0-9.-]", "", parseaddr(sender)[1].rpartition("@")[2]) or "clef-campaign"
    return f"<{digest}@{domain}>"


class _Connection(smtplib.SMTP):
    """``smtplib.SMTP`` with a connect timeout of its own; ``timeout`` bounds each reply."""

    connect_timeout: float = 10.0

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), self.connect_timeout, self.source_address)
        sock.settimeout(timeout)
        return sock


class _SslConnection(smtplib.SMTP_SSL, _Connection):
    """Implicit TLS (port 465): ``SMTP_SSL`` wraps the socket :class:`_Connection` opened."""


@dataclass
class _Progress:
    """How far one attempt got: once the body is on the wire, a failure leaves the outcome unknown."""

    body_sent: bool = False
    accepted: bool = False
    cut: bool = False  # the watchdog ended an attempt that went on too long


class _AttemptTooLong(TimeoutError):
    """The watchdog cut an attempt: the server kept answering, too slowly to finish."""

    def __init__(self, seconds: float):
        super().__init__(f"the server was still not done after {seconds:g} s, the longest one attempt may take")


def _cut(smtp: smtplib.SMTP, progress: _Progress) -> None:
    """End a conversation that outlived its attempt: a blocked read returns at once."""
    progress.cut = True
    sock = getattr(smtp, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class SmtpSender:
    """Sends one message over SMTP; see the module docstring for what is retried and what is not."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings

    def build(self, mail: Mail, message_id: str | None = None) -> EmailMessage:
        message = EmailMessage()
        message["From"] = one_line(self.settings.sender)
        message["To"] = checked_address(mail.recipient)
        if mail.cc:
            message["Cc"] = ", ".join(checked_address(address) for address in mail.cc)
        if mail.reply_to:
            message["Reply-To"] = one_line(mail.reply_to)
        message["Subject"] = one_line(mail.subject)
        message["Date"] = format_datetime(dt.datetime.now(dt.timezone.utc))
        message["Message-ID"] = one_line(message_id or make_msgid(domain="clef-campaign"))
        message.set_content(mail.body)
        return message

    def send(self, mail: Mail, message_id: str | None = None) -> str:
        """Deliver ``mail``; returns its Message-ID or raises :class:`MailError` (its ``kind`` says what happened)."""
        message = self.build(mail, message_id)
        recipients = [mail.recipient, *mail.cc]
        last_error: Exception | None = None
        attempts = 0
        while attempts < self.settings.attempts:
            if attempts:
                time.sleep(self.settings.backoff_seconds * 2 ** (attempts - 1))
            attempts += 1
            progress = _Progress()
            try:
                self._deliver(message, recipients, progress)
                return str(message["Message-ID"])
            except OSError as exc:  # smtplib's errors are OSErrors too
                kind, code = _classify(exc, progress)
                last_error = _AttemptTooLong(self.settings.longest_attempt_seconds()) if progress.cut else exc
                if kind is not None:
                    raise MailError(self._describe(mail, last_error, attempts, after_body=kind == UNKNOWN), kind=kind, code=code) from None
                if _timed_out(last_error):
                    break  # a server that did not answer in time will not answer the next attempt either
        kind = TRANSIENT if isinstance(last_error, (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused)) else CONNECTION
        raise MailError(self._describe(mail, last_error, attempts), kind=kind) from None

    def _deliver(self, message: EmailMessage, recipients: list[str], progress: _Progress) -> None:
        settings = self.settings
        smtp = self._connection()
        # Each read waits at most ``timeout``; a server that answers slowly but forever (a byte at a
        # time) meets this watchdog, which cuts the connection after the longest a whole attempt may take.
        watchdog = threading.Timer(settings.longest_attempt_seconds(), _cut, (smtp, progress))
        watchdog.daemon = True
        watchdog.start()
        try:
            smtp.connect(settings.host, settings.port)
            smtp.ehlo_or_helo_if_needed()
            if settings.starttls and not settings.use_ssl:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            self._transfer(smtp, message, recipients, progress)
        finally:
            watchdog.cancel()
            self._close(smtp, polite=progress.accepted and not progress.cut)

    def _connection(self) -> smtplib.SMTP:
        """An SMTP client, not connected yet, with the settings' connect and read timeouts."""
        settings = self.settings
        if settings.use_ssl:
            smtp: smtplib.SMTP = _SslConnection(timeout=settings.timeout, context=ssl.create_default_context())
        else:
            smtp = _Connection(timeout=settings.timeout)
        smtp.connect_timeout = settings.connect_timeout
        return smtp

    @staticmethod
    def _transfer(smtp: smtplib.SMTP, message: EmailMessage, recipients: list[str], progress: _Progress) -> None:
        """MAIL, RCPT, DATA by hand (as ``send_message`` does), noting when the body goes on the wire."""
        sender = parseaddr(str(message["From"]))[1] or str(message["From"])
        international = any(not address.isascii() for address in [sender, *recipients])
        options: list[str] = []
        if international:
            if not smtp.has_extn("smtputf8"):
                raise _AddressNotSupported("the server does not support SMTPUTF8, needed for this non-ASCII address")
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        data = message.as_bytes(policy=email.policy.SMTPUTF8 if international else email.policy.SMTP)
        code, reply = smtp.mail(sender, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        refused = {}
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, reply)
        if len(refused) == len(recipients):
            raise smtplib.SMTPRecipientsRefused(refused)
        code, reply = smtp.docmd("data")
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        progress.body_sent = True  # from here on a lost connection may or may not have delivered it
        smtp.send(_dot_stuffed(data))
        code, reply = smtp.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        progress.accepted = True

    @staticmethod
    def _close(smtp: smtplib.SMTP, polite: bool) -> None:
        """QUIT after a delivered message (its failure changes nothing), then close the socket."""
        try:
            if polite:
                smtp.quit()
        except OSError:
            pass
        finally:
            smtp.close()

    def _describe(self, mail: Mail, exc: Exception | None, attempts: int, after_body: bool = False) -> str:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, _AttemptTooLong):
            reason = str(exc)
        elif _timed_out(exc):
            reason = f"no answer within {self.settings.timeout:g} s (or no connection within {self.settings.connect_timeout:g} s)"
        elif isinstance(exc, smtplib.SMTPResponseException):
            reason = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}"
        elif isinstance(exc, smtplib.SMTPRecipientsRefused):
            reason = "; ".join(f"{who}: {code} {text.decode(errors='replace') if isinstance(text, bytes) else text}" for who, (code, text) in exc.recipients.items())
        elif isinstance(exc, smtplib.SMTPServerDisconnected):
            reason = f"the server closed the connection ({exc})"
        if after_body:
            reason = f"the message was handed over but the server never confirmed it: {reason}; it may have arrived, so it is not sent again by itself"
        return (
            f"cannot send {one_line(mail.subject)!r} to {one_line(mail.recipient)} via SMTP server "
            f"{self.settings.host}:{self.settings.port} after {attempts} attempt(s): {reason}"
        )


class _AddressNotSupported(smtplib.SMTPException):
    """The address needs an extension (SMTPUTF8) the server does not offer."""


# Replies about the server, the account or the sender, never about one recipient: a 5xx here is no
# reason to give up an address, and the next message would meet the same reply.
_SERVER_LEVEL = (smtplib.SMTPConnectError, smtplib.SMTPHeloError, smtplib.SMTPSenderRefused, smtplib.SMTPAuthenticationError)


def _timed_out(exc: BaseException | None) -> bool:
    """A timeout, also when smtplib re-raised it as "connection unexpectedly closed"."""
    return isinstance(exc, TimeoutError) or isinstance(getattr(exc, "__context__", None), TimeoutError)


def _classify(exc: OSError, progress: _Progress) -> tuple[str | None, int | None]:
    """(kind, code) of a failed attempt, or (None, None) when another attempt may succeed."""
    if isinstance(exc, _AddressNotSupported):
        return REFUSED, None
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return (REFUSED, codes[0] if codes else None) if all(code >= 500 for code in codes) else (None, None)
    if isinstance(exc, _SERVER_LEVEL) or isinstance(exc, smtplib.SMTPNotSupportedError):
        return CONNECTION, getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPResponseException):
        if exc.smtp_code == 421:  # "service not available, closing the channel"
            return CONNECTION, 421
        return (REFUSED, exc.smtp_code) if exc.smtp_code >= 500 else (None, None)  # 4xx: it did not take the message
    if progress.body_sent:
        return UNKNOWN, None
    return None, None


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA section: lines starting with '.' doubled, CRLF line ends, the final '.' line."""
    data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


@dataclass(frozen=True)
class SendResult:
    key: str
    sent: bool  # True only when this call handed the message to the server
    status: str = SENT  # the marker's status: sent, undeliverable, unknown, or in progress (claimed by another sender)
    detail: str = ""  # why it is undeliverable or unknown


class Outbox:
    """Sends each (purpose, milestone, recipient) message at most once per campaign; see the module docstring."""

    def __init__(self, store: ObjectStore, layout: Layout, sender: SmtpSender):
        self.store = store
        self.layout = layout
        self.sender = sender

    def key(self, purpose: str, milestone: str, recipient: str) -> str:
        try:
            return self.layout.outbox(purpose, milestone, recipient)
        except UnsafeKeyError:
            checked_address(recipient)  # an address with spaces or line breaks: say so, as a refusal
            raise

    def already_sent(self, purpose: str, milestone: str, recipient: str) -> bool:
        return self.store.exists(self.key(purpose, milestone, recipient))

    def claim_expiry_seconds(self) -> float:
        """After this long a claim whose sender never recorded an outcome counts as ``unknown``."""
        return max(600.0, 2 * self.sender.settings.longest_send_seconds())

    def send_once(self, purpose: str, milestone: str, mail: Mail) -> SendResult:
        """Claim the key, send, record the outcome; a key claimed already is reported, never sent again."""
        key = self.key(purpose, milestone, mail.recipient)
        record = {"campaign": self.layout.campaign, "purpose": purpose, "milestone": milestone,
                  "recipient": mail.recipient, "subject": one_line(mail.subject)}
        for _ in range(3):  # a claim released between our create and our read: claim again
            if self.store.create_json_once(key, {**record, "status": IN_PROGRESS, "claimed_at": _now()}):
                return self._send_claimed(key, record, mail)
            existing = self._existing(key, record)
            if existing is not None:
                return existing
        return SendResult(key, sent=False, status=IN_PROGRESS, detail="claimed and released by other senders meanwhile")

    def _send_claimed(self, key: str, record: dict, mail: Mail) -> SendResult:
        message_id = message_id_for(key, self.sender.settings.sender)
        try:
            self.sender.send(mail, message_id)
        except MailError as error:
            if error.kind in (REFUSED, UNKNOWN):
                status = UNDELIVERABLE if error.kind == REFUSED else UNKNOWN
                outcome = {**record, "status": status, "error": str(error), "message_id": message_id, "tried_at": _now()}
                self.store.put_json(key, outcome)
                self._list_problem(outcome)
            else:
                self._release(key)
            raise
        except BaseException:
            self._release(key)
            raise
        self.store.put_json(key, {**record, "status": SENT, "message_id": message_id, "sent_at": _now()})
        return SendResult(key, sent=True)

    def _list_problem(self, outcome: dict) -> None:
        """Index an undeliverable or unknown message under ``undeliverable/``, so the organizers'
        Campaigns page lists them without reading every marker (the marker stays the truth)."""
        try:
            self.store.put_json(self.layout.undeliverable(outcome["purpose"], outcome["milestone"], outcome["recipient"]), outcome)
        except (StoreError, UnsafeKeyError):
            pass  # the marker holds the outcome and the stage's summary reports it

    def _release(self, key: str) -> None:
        """Nothing was delivered: delete the claim so the next try sends the message."""
        try:
            self.store.delete(key)
        except StoreError:
            pass  # the claim stays and expires into "unknown": reported, never sent twice

    def _existing(self, key: str, record: dict) -> SendResult | None:
        """What the marker says (None if it vanished: a claim released a moment ago)."""
        try:
            marker = self.store.get_json(key)
        except StoreError:
            if self.store.head(key) is None:
                return None
            raise
        status = marker.get("status", SENT)  # markers written before claims existed mean "sent"
        if status == IN_PROGRESS and _age_seconds(marker.get("claimed_at")) > self.claim_expiry_seconds():
            detail = (f"claimed at {marker.get('claimed_at')} by a sender that never recorded the outcome "
                      "(its worker stopped); it may have arrived, so it is not sent again by itself")
            outcome = {**record, "status": UNKNOWN, "error": detail, "claimed_at": marker.get("claimed_at"), "tried_at": _now()}
            self.store.put_json(key, outcome)
            self._list_problem(outcome)
            return SendResult(key, sent=False, status=UNKNOWN, detail=detail)
        if status == IN_PROGRESS:
            return SendResult(key, sent=False, status=status, detail=f"claimed at {marker.get('claimed_at')}")
        return SendResult(key, sent=False, status=status, detail=str(marker.get("error") or ""))

    def sent_markers(self, purpose: str | None = None) -> list[str]:
        return self.store.list_keys(self.layout.outbox_prefix(purpose))


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _age_seconds(stamp: Any) -> float:
    try:
        moment = dt.datetime.fromisoformat(str(stamp))
    except ValueError:
        return float("inf")
    return (dt.datetime.now(dt.timezone.utc) - moment).total_seconds()
