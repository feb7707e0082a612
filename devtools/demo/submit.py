"""What the demo's participants do: put registration documents in the inbox and runs where their upload links point.

Used by ``simulate`` (through ``dag.test()``) and by the live demo (under the scheduler), so both
replay the same participant behaviour. Each read and upload is retried on its own when the store
fails transiently (:mod:`devtools.demo.retry`), so one throttled request neither loses a run nor
sends the ones before it twice; what keeps failing raises :class:`~devtools.demo.retry.StandInError`.
"""
from __future__ import annotations

import json
import time
from typing import Iterable

from include.campaign.confirmation import document_digest, record_confirmation
from include.campaign.context import CampaignContext
from include.campaign.teams import all_teams
from devtools.demo.data import DemoData
from devtools.demo.retry import retrying
from devtools.demo.teams import DemoRegistration

# moto, S3 and MinIO stamp uploads to the second: one team's runs of a task go up a second apart so
# the collection can tell which is the latest.
SAME_SLOT_GAP_SECONDS = 1.05


def confirm_on_submission(ctx: CampaignContext, document_key: str, raw: bytes, contact: str, how: str) -> None:
    """Record the contact's proof of address for a document a trusted party wrote for its own address
    (the demo's stand-ins, tests), as if the contact had opened its confirmation link. Dev wing only:
    the product records a proof only when the link is opened (``confirmation.confirm``)."""
    record_confirmation(ctx, document_digest(document_key, raw), contact, how)


def team_ids(ctx: CampaignContext) -> dict[str, str]:
    """Team name -> team id, from the team records the intake wrote."""
    return retrying("reading the team records", lambda: {team["team_name"]: team["team_id"] for team in all_teams(ctx)})


def submit_registrations(ctx: CampaignContext, registrations: Iterable[DemoRegistration]) -> int:
    count = 0
    for registration in registrations:
        mailbox = (registration.document.get("contact_email") or "").split("@")[0]
        key = ctx.layout.registrations_inbox() + "-".join(filter(None, (_slug(registration.team_name), _slug(mailbox)))) + ".json"
        document = json.dumps(registration.document, indent=2, ensure_ascii=False).encode("utf-8")
        retrying(f"uploading {key}", lambda: ctx.store.put_bytes(key, document, content_type="application/json"))
        contact = registration.document.get("contact_email")
        if isinstance(contact, str):  # the stand-in opens its confirmation link at once
            retrying(f"confirming {key}", lambda: confirm_on_submission(ctx, key, document, contact.strip(), "demo stand-in participant"))
        count += 1
    return count


def submit_runs(ctx: CampaignContext, demo: DemoData, late: bool, tasks: Iterable[str] | None = None) -> int:
    """Upload the on-time (or the late) runs of registered teams, in the demo's order."""
    ids = team_ids(ctx)
    wanted = set(tasks) if tasks is not None else None
    last_upload: dict[tuple[str, str], float] = {}
    count = 0
    for task_id, runs in demo.runs.items():
        if wanted is not None and task_id not in wanted:
            continue
        for run in runs:
            if run.late != late or run.team not in ids:
                continue
            slot = (task_id, ids[run.team])
            time.sleep(max(0.0, SAME_SLOT_GAP_SECONDS - (time.monotonic() - last_upload.get(slot, float("-inf")))))
            key = ctx.layout.submissions(task_id, ids[run.team]) + run.run_name
            retrying(f"uploading {key}", lambda: ctx.store.put_bytes(key, run.data))
            last_upload[slot] = time.monotonic()
            count += 1
    return count


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
