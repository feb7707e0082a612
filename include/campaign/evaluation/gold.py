"""The gold folder of a task, downloaded once per process and content, and checked once per version.

Scoring validates every run against a local copy of the task's test gold; the copy is keyed by a
fingerprint of the gold listing, so a changed gold object means a new download and a new fingerprint
in the lineage.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from include.campaign.evaluation.records import ScoringError, version_record
from include.campaign.layout import UnsafeKeyError, relative_path, segment


@dataclass(frozen=True)
class GoldCopy:
    folder: Path  # the gold folder to hand to validation
    files: dict[str, str]  # path inside the folder -> sha256
    fingerprint: str  # sha256 over the listing (key, size, etag): changes when any gold object changes


_GOLD_COPIES: dict[tuple[str, str], GoldCopy] = {}
_GOLD_LOCK = threading.Lock()


def gold_copy(ctx, task_id: str) -> GoldCopy:
    """The task's test gold as a local folder, downloaded once per content (cached by fingerprint)."""
    prefix = ctx.layout.gold(task_id, "test")
    listing = [info for info in ctx.store.list_objects(prefix) if not info.key.endswith("/")]
    if not listing:
        raise ScoringError(f"task {task_id}: no gold under s3://{ctx.store.bucket}/{prefix}; stage the test ground truth there first")
    fingerprint = hashlib.sha256("\n".join(f"{i.key}\t{i.size}\t{i.etag}" for i in listing).encode()).hexdigest()
    cache_key = (f"{ctx.store.settings.endpoint_url}|{ctx.store.bucket}|{prefix}", fingerprint)
    with _GOLD_LOCK:
        copy = _GOLD_COPIES.get(cache_key)
        if copy is None or not copy.folder.is_dir():
            copy = _download_gold(ctx, task_id, prefix, listing, fingerprint)
            _GOLD_COPIES[cache_key] = copy
    return copy


def _download_gold(ctx, task_id: str, prefix: str, listing, fingerprint: str) -> GoldCopy:
    base = Path(tempfile.gettempdir()) / "clef-gold" / segment(ctx.campaign.id) / segment(task_id) / fingerprint[:24]
    index = base / "files.json"
    if index.is_file():  # another process on this worker downloaded it already
        return GoldCopy(base / "gold", json.loads(index.read_text()), fingerprint)
    staging = Path(tempfile.mkdtemp(prefix="gold-", dir=_ensure_dir(base.parent)))
    files: dict[str, str] = {}
    for info in listing:
        relative = _relative_gold_path(prefix, info.key)
        target = staging / "gold" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        ctx.store.download(info.key, str(target))
        files[relative] = file_sha256(target)
    (staging / "files.json").write_text(json.dumps(files, sort_keys=True))
    try:
        os.replace(staging, base)  # atomic: a folder is either complete or absent
    except OSError:  # a concurrent process won the race; its copy has the same content
        shutil.rmtree(staging, ignore_errors=True)
    return GoldCopy(base / "gold", files, fingerprint)


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _relative_gold_path(prefix: str, key: str) -> str:
    try:
        return relative_path(prefix, key, "gold object")
    except UnsafeKeyError as problem:
        raise ScoringError(str(problem)) from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


_VERSION_GOLD: dict[tuple[str, str, str], GoldCopy] = {}


def gold_for_version(ctx, task_id: str, version: str) -> GoldCopy:
    """The gold of a version, looked up once per process: checks the version exists, lists the gold once.

    Every run of a version is scored against the gold seen by the first run in this process; if
    the gold changes while other processes score, ``finalize`` notices (fingerprints differ).
    """
    key = (f"{ctx.store.settings.endpoint_url}|{ctx.store.bucket}", task_id, version)
    copy = _VERSION_GOLD.get(key)
    if copy is None or not copy.folder.is_dir():
        version_record(ctx, task_id, version)
        copy = _VERSION_GOLD[key] = gold_copy(ctx, task_id)
    return copy

