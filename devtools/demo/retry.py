"""Bounded retries with exponential backoff for the demo's stand-ins (participants, organizer, watcher).

A stand-in calls Airflow's REST API and the object store the way real participants do, and meets the
same weather: a 500 while the API server's database is busy, a dropped connection, a throttling store.
:func:`retrying` tries a call again while it fails for such a reason, a bounded number of times;
whatever still fails, or fails for good (a 404, a bug), comes back as one :class:`StandInError`
whose message says what was being done and why it failed.
"""
from __future__ import annotations

import http.client
import urllib.error
from typing import Callable, TypeVar

from botocore.exceptions import BotoCoreError
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from include.campaign.store import StoreError

T = TypeVar("T")

# Six tries over about a minute: longer than a SQLite lock or an API server restart lasts.
ATTEMPTS = 6
BACKOFF_SECONDS = (1.0, 20.0)  # first wait, longest wait
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class StandInError(RuntimeError):
    """A stand-in could not do its part of the demo; the message says what and why."""


class TokenRefused(Exception):
    """The API refused the bearer token (expired, or the server restarted): log in again and retry."""


def is_transient(exc: BaseException) -> bool:
    """Worth another try: a 5xx or 429 answer, a refused, reset or timed-out connection, a store error."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in TRANSIENT_HTTP_STATUSES
    return isinstance(exc, (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, StoreError, BotoCoreError, TokenRefused))


def retrying(what: str, action: Callable[[], T], attempts: int = ATTEMPTS, backoff: tuple[float, float] = BACKOFF_SECONDS) -> T:
    """``action()``, tried up to ``attempts`` times while it fails transiently, with exponential backoff.

    A permanent failure (a 4xx other than 408/425/429, a bug) is not retried. Either way the error that
    ends the tries comes back as a :class:`StandInError` naming ``what`` and the last reason."""
    retryer = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=backoff[0], min=backoff[0], max=backoff[1]),
        retry=retry_if_exception(is_transient),
        reraise=False,
    )
    try:
        return retryer(action)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        raise StandInError(f"{what}: still failing after {attempts} tries: {_reason(last)}") from last
    except StandInError:
        raise
    except Exception as exc:  # noqa: BLE001 (permanent: said once, with what was being done)
        raise StandInError(f"{what}: {_reason(exc)}") from exc


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        detail = ""
        try:
            detail = exc.read(300).decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            pass
        return f"HTTP {exc.code} {exc.reason}" + (f" ({detail})" if detail else "")
    return f"{type(exc).__name__}: {exc}"


