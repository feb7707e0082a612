"""What guards every request: body size limits, CSRF form keys, rate limits, security headers, clean text.

- :class:`BodyLimit` is ASGI middleware that refuses a POST larger than its path's limit before any
  byte is parsed: by its ``Content-Length``, and while streaming when the client sent none.
- CSRF: a random ``clef_csrf`` cookie (``SameSite=Strict``) and a form field holding its HMAC under
  the portal secret; :func:`csrf_problem` also refuses a foreign ``Origin``.
- :class:`RateLimiter` counts events per (purpose, client) in a sliding window, in memory: one portal
  process per deployment (run more behind a proxy that limits too).
- :func:`text_problem` refuses control, format and line-separator characters, so nothing a visitor
  types can reach an e-mail header or break a line.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import unicodedata
from collections import deque
from typing import Callable

CSRF_COOKIE, CSRF_FIELD = "clef_csrf", "csrf_token"


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over ``limit_for(path)`` bytes with 413, before the app reads them."""

    def __init__(self, app, limit_for: Callable[[str], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(send, limit)
            return
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, limit)


async def _too_large(send, limit: int) -> None:
    body = (f"<!doctype html><title>Too large</title><p>This request is larger than the {limit // 1024} KiB "
            "this page accepts; nothing was stored. Go back, make it smaller and send it again.</p>").encode()
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# --- CSRF --------------------------------------------------------------------------------------------


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(32)


def csrf_field_value(secret: str, cookie: str) -> str:
    return hmac.new(hashlib.sha256(b"clef-portal-csrf\0" + secret.encode()).digest(), cookie.encode(), hashlib.sha256).hexdigest()


def csrf_problem(secret: str, cookie: str | None, field: str | None, origin: str | None, host: str | None) -> str | None:
    """None when the form came from this portal's own page, else why it is refused."""
    if origin and origin != "null" and host and origin.split("://", 1)[-1] != host:
        return "this form was sent from another site; open the portal's page and send it from there"
    if not cookie or not field:
        return "this form has no valid form key (it is too old, or cookies are off): reload the page and send it again"
    if not hmac.compare_digest(str(field), csrf_field_value(secret, cookie)):
        return "this form's key does not match (the page is too old): reload the page and send it again"
    return None


# --- rate limits -------------------------------------------------------------------------------------


class RateLimiter:
    """At most ``limit`` events per ``window_seconds`` for each (purpose, client)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._events: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, purpose: str, client: str, limit: int, window_seconds: float) -> bool:
        now = self.clock()
        with self._lock:
            events = self._events.setdefault((purpose, client), deque())
            while events and events[0] <= now - window_seconds:
                events.popleft()
            if len(events) >= limit:
                return False
            events.append(now)
            return True


# --- text a visitor typed ----------------------------------------------------------------------------


def text_problem(value: str, max_chars: int) -> str | None:
    """Why a single-line text field cannot be taken as it is, or None."""
    if len(value) > max_chars:
        return f"is {len(value)} characters long; at most {max_chars} are accepted here"
    for character in value:
        if unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            return f"contains a control or invisible character (U+{ord(character):04X}); please type it on one line, without such characters"
    return None


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # links carry tokens: never hand them to another site
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def content_security_policy(upload_origin: str | None) -> str:
    forms = "'self'" + (f" {upload_origin}" if upload_origin else "")
    return f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action {forms}; frame-ancestors 'none'; base-uri 'none'"
