"""E-mail: Jinja2 templates, an SMTP sender, and an outbox that sends each message once.

A template in ``include/templates/mail/<purpose>.txt.j2`` renders to ``Subject: …``, a blank line,
then the body. :class:`Outbox` records each message it sent under a key derived from (campaign,
purpose, milestone, recipient) with a create-once write: a retried or re-run task finds the marker
and sends nothing, and a send that failed leaves no marker, so the retry sends it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from include.campaign.layout import Layout
from include.campaign.store import ObjectStore, dump_json

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"


class MailError(RuntimeError):
    """A message could not be sent; the text names the server, the recipient and the reason.

    ``permanent`` is True when the server refused for good (a 5xx reply such as an unknown mailbox):
    retrying will not help, and the caller should report the address rather than fail other work.
    """

    def __init__(self, message: str, permanent: bool = False, code: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.code = code


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


@dataclass(frozen=True)
class Mail:
    recipient: str
    subject: str
    body: str
    reply_to: str | None = None
    cc: tuple[str, ...] = ()


def render_mail(purpose: str, recipient: str, **context: Any) -> Mail:
    """Render ``mail/<purpose>.txt.j2``: its first line is ``Subject: …``, the rest is the body."""
    text = template_environment().get_template(f"mail/{purpose}.txt.j2").render(recipient=recipient, **context)
    head, _, body = text.partition("\n")
    if not head.startswith("Subject:"):
        raise ValueError(f"template mail/{purpose}.txt.j2 must start with a 'Subject:' line")
    return Mail(recipient=recipient, subject=head[len("Subject:"):].strip(), body=body.lstrip("\n"), reply_to=context.get("reply_to"))


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "clef-campaign@localhost"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    use_ssl: bool = False
    timeout: float = 30.0
    attempts: int = 3
    backoff_seconds: float = 0.5

    @classmethod
    def from_connection(cls, *, host: str, port: int | None, login: str | None, password: str | None, extra: dict[str, Any] | None) -> "SmtpSettings":
        """From an Airflow ``smtp`` connection's fields (the DAG layer reads the connection)."""
        extra = extra or {}
        return cls(
            host=host,
            port=int(port or 25),
            sender=extra.get("from_email") or extra.get("sender") or "clef-campaign@localhost",
            username=login or None,
            password=password or None,
            starttls=not _truthy(extra.get("disable_tls", True)),
            use_ssl=not _truthy(extra.get("disable_ssl", True)),
            timeout=float(extra.get("timeout", 30)),
            attempts=int(extra.get("retry_limit", 3)),
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
        return cls(host=env.get("CLEF_SMTP_HOST", "localhost"), port=int(env.get("CLEF_SMTP_PORT", "25")), sender=env.get("CLEF_MAIL_FROM", "clef-campaign@localhost"))


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class SmtpSender:
    """Sends one message over SMTP, retrying connection faults with exponential backoff."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings

    def build(self, mail: Mail, message_id: str | None = None) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = mail.recipient
        if mail.cc:
            message["Cc"] = ", ".join(mail.cc)
        if mail.reply_to:
            message["Reply-To"] = mail.reply_to
        message["Subject"] = mail.subject
        message["Date"] = format_datetime(dt.datetime.now(dt.timezone.utc))
        message["Message-ID"] = message_id or make_msgid(domain="clef-campaign")
        message.set_content(mail.body)
        return message

    def send(self, mail: Mail, message_id: str | None = None) -> str:
        message = self.build(mail, message_id)
        last_error: Exception | None = None
        for attempt in range(self.settings.attempts):
            try:
                self._deliver(message)
                return str(message["Message-ID"])
            # smtplib's errors are OSErrors: classify the server's refusals before connection faults.
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                if all(code >= 500 for code in codes):
                    raise MailError(self._describe(mail, exc), permanent=True, code=codes[0] if codes else None) from None
                last_error = exc
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code >= 500:
                    raise MailError(self._describe(mail, exc), permanent=True, code=exc.smtp_code) from None
                last_error = exc  # 4xx: the server asks us to try again later
            except OSError as exc:
                last_error = exc  # connection refused, reset, timed out: try again after a pause
            if attempt + 1 < self.settings.attempts:
                time.sleep(self.settings.backoff_seconds * 2**attempt)
        raise MailError(self._describe(mail, last_error)) from None

    def _deliver(self, message: EmailMessage) -> None:
        settings = self.settings
        factory = smtplib.SMTP_SSL if settings.use_ssl else smtplib.SMTP
        with factory(settings.host, settings.port, timeout=settings.timeout) as smtp:
            if settings.starttls and not settings.use_ssl:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            smtp.send_message(message)

    def _describe(self, mail: Mail, exc: Exception | None) -> str:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, socket.timeout):
            reason = "timed out"
        elif isinstance(exc, smtplib.SMTPResponseException):
            reason = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}"
        elif isinstance(exc, smtplib.SMTPRecipientsRefused):
            reason = "; ".join(f"{who}: {code} {text.decode(errors='replace') if isinstance(text, bytes) else text}" for who, (code, text) in exc.recipients.items())
        return (
            f"cannot send {mail.subject!r} to {mail.recipient} via SMTP server "
            f"{self.settings.host}:{self.settings.port} after {self.settings.attempts} attempt(s): {reason}"
        )


@dataclass(frozen=True)
class SendResult:
    key: str
    sent: bool  # False when the outbox already held the marker


class Outbox:
    """Sends each (purpose, milestone, recipient) message at most once per campaign."""

    def __init__(self, store: ObjectStore, layout: Layout, sender: SmtpSender):
        self.store = store
        self.layout = layout
        self.sender = sender

    def key(self, purpose: str, milestone: str, recipient: str) -> str:
        return self.layout.outbox(purpose, milestone, recipient)

    def already_sent(self, purpose: str, milestone: str, recipient: str) -> bool:
        return self.store.exists(self.key(purpose, milestone, recipient))

    def send_once(self, purpose: str, milestone: str, mail: Mail) -> SendResult:
        """Send unless the marker exists; write the marker only after the server accepted the message."""
        key = self.key(purpose, milestone, mail.recipient)
        if self.store.exists(key):
            return SendResult(key, sent=False)
        message_id = self.sender.send(mail)
        record = {
            "campaign": self.layout.campaign,
            "purpose": purpose,
            "milestone": milestone,
            "recipient": mail.recipient,
            "subject": mail.subject,
            "message_id": message_id,
            "sent_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        }
        self.store.create_once(key, dump_json(record), content_type="application/json")
        return SendResult(key, sent=True)

    def sent_markers(self, purpose: str | None = None) -> list[str]:
        return self.store.list_keys(self.layout.outbox_prefix(purpose))
