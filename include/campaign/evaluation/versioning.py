"""Evaluation versions: allocate the next one (create-once), list them, find the latest complete one.

Versions are ``v0001``, ``v0002``, ... per task; a version is complete when its lineage exists, and a
complete version is never written again (:mod:`include.campaign.evaluation.records` holds the objects).
"""
from __future__ import annotations

import re

from include.campaign.evaluation.records import ScoringError, create_version_record, has_lineage, known_task, version_names, version_record

VERSION_NAME = re.compile(r"^v(\d{4,})$")


def new_version(ctx, task_id: str, reason: str, triggered_by: str, request_id: str | None = None) -> str:
    """Allocate the next evaluation version (v0001, v0002, ...) with a create-once write.

    Two concurrent scorings never share a version: the loser of a create-once race moves on to
    the next number. ``request_id`` (e.g. the DAG run id) makes a retried allocation return the
    version it allocated before instead of a new one.
    """
    known_task(ctx, task_id)
    if not str(reason or "").strip():
        raise ScoringError(f"task {task_id}: a scoring needs a reason (what changed, why re-score)")
    existing = versions(ctx, task_id)
    if request_id:
        for version in reversed(existing):
            if version_record(ctx, task_id, version).get("request_id") == request_id:
                return version
    number = max((int(VERSION_NAME.match(v).group(1)) for v in existing), default=0) + 1
    record = {"task": task_id, "reason": str(reason).strip(), "triggered_by": triggered_by or "unknown",
              "created_at": ctx.now().isoformat(), "request_id": request_id}
    for _ in range(1000):
        version = f"v{number:04d}"
        if create_version_record(ctx, task_id, version, {**record, "version": version}):
            return version
        number += 1
    raise ScoringError(f"task {task_id}: could not allocate an evaluation version after 1000 attempts")


def versions(ctx, task_id: str) -> list[str]:
    """Every allocated version of the task, oldest first."""
    names = [name for name in version_names(ctx, task_id) if VERSION_NAME.match(name)]
    return sorted(names, key=lambda name: int(VERSION_NAME.match(name).group(1)))


def is_complete(ctx, task_id: str, version: str) -> bool:
    """Whether the version's lineage exists (it is written last)."""
    return has_lineage(ctx, task_id, version)


def version_number(version: str) -> int:
    return int(VERSION_NAME.match(version).group(1))


def latest_version(ctx, task_id: str, before: str | None = None) -> str | None:
    """The newest complete version (optionally older than ``before``), or None."""
    limit = int(VERSION_NAME.match(before).group(1)) if before else None
    for version in reversed(versions(ctx, task_id)):
        if limit is not None and int(VERSION_NAME.match(version).group(1)) >= limit:
            continue
        if is_complete(ctx, task_id, version):
            return version
    return None


