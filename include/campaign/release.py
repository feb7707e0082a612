"""Data release: publish a task's staged split and send every approved team its links.

At a task's development or test release date, :func:`release` checks the files staged under
``staging/<task>/<split>/`` against ``MANIFEST.json`` in the same folder (every file listed, no file
missing, sizes and sha256 sums equal), copies the releasable ones to ``releases/<task>/<split>/``,
records what it published in ``releases/<task>/<split>.json`` and e-mails presigned download links
to every team that may receive the task's data. The test release also sends each team one
presigned upload URL per allowed run (``submissions/<task>/<team>/run-01`` ...);
:func:`refresh_upload_links` renews them before they expire, until the run deadline.

Ground truth is never published: a file the manifest marks ``ground_truth``, a file inside a folder
named ``gold``, a file whose bytes equal any object under ``gold/<task>/``, and a text file whose
text equals a gold text file's once both are normalised (UTF-8 or UTF-16 byte-order mark dropped,
CRLF and CR line ends made LF, trailing blank space at the end dropped) are withheld: a copy of the
gold saved by another editor or system differs in bytes only.

A staging area that does not match its manifest stops that task's release with
:class:`ReleaseError`, whose message lists every problem and what to fix; other tasks are unaffected.
"""
from __future__ import annotations

import bisect
import codecs
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from include.campaign.context import CampaignContext
from include.campaign.layout import SPLITS, UnsafeKeyError, segment
from include.campaign.store import ObjectInfo
from include.campaign.teams import (
    Notices,
    approved_teams,
    copy_if_changed,
    local_and_utc_text,
    may_receive_data,
    organizer_addresses,
    put_json_if_changed,
    task_dates,
)

MANIFEST_NAME = "MANIFEST.json"
SPLIT_LABELS = {"dev": "development", "test": "test"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ReleaseError(RuntimeError):
    """The staged files of one task's split cannot be released; the message says what to fix."""


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    sha256: str
    size: int
    ground_truth: bool = False


# --- the manifest --------------------------------------------------------------------------------


def read_staging_manifest(ctx: CampaignContext, task_id: str, split: str) -> list[ManifestEntry]:
    """The staged split's manifest, or :class:`ReleaseError` naming the file, the line and the rule."""
    key = ctx.layout.staging_manifest(task_id, split)
    if ctx.store.head(key) is None:
        raise ReleaseError(
            f"{key}: no manifest, so nothing of {task_id}/{split} was released. Stage the files under "
            f"{ctx.layout.staging(task_id, split)} with a {MANIFEST_NAME} listing each one: "
            '{"files": [{"path": "images/1.png", "sha256": "<hex>", "size": <bytes>, "ground_truth": false}]}'
        )
    text = ctx.store.get_bytes(key).decode("utf-8", errors="replace")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReleaseError(f"{key}, line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg} "
                           "(fix the syntax there and upload the manifest again)") from None
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, list) or not files:
        raise ReleaseError(f"{key}, line 1: expected an object with a non-empty list \"files\" of {{path, sha256, size, ground_truth}}")
    entries, problems = [], []
    for index, item in enumerate(files):
        entry, problem = _manifest_entry(item, index)
        if problem:
            problems.append(f"{key}, line {_line_of(text, item)}: files[{index}]: {problem}")
        else:
            entries.append(entry)
    duplicates = sorted({e.path for e in entries if [x.path for x in entries].count(e.path) > 1})
    problems += [f"{key}: {path!r} is listed more than once" for path in duplicates]
    if problems:
        raise ReleaseError(f"the manifest of {task_id}/{split} has {len(problems)} problem(s); nothing was released:\n  " + "\n  ".join(problems))
    return entries


def _manifest_entry(item: Any, index: int) -> tuple[ManifestEntry | None, str | None]:
    if not isinstance(item, dict):
        return None, "expected an object with path, sha256, size"
    path, digest, size = item.get("path"), item.get("sha256"), item.get("size")
    if not isinstance(path, str) or not path:
        return None, "\"path\" must be the file's path relative to the split's staging folder"
    try:
        for part in path.split("/"):
            segment(part)
    except UnsafeKeyError as exc:
        return None, f"path {path!r}: {exc}"
    if not isinstance(digest, str) or not _SHA256.match(digest.lower()):
        return None, f"{path}: \"sha256\" must be 64 hexadecimal digits"
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return None, f"{path}: \"size\" must be the file's length in bytes"
    ground_truth = item.get("ground_truth", False)
    if not isinstance(ground_truth, bool):
        return None, f"{path}: \"ground_truth\" must be true or false"
    return ManifestEntry(path, digest.lower(), size, ground_truth), None


def _line_of(text: str, item: Any) -> int:
    """The line where a manifest entry's path appears (1 if it cannot be found)."""
    needle = json.dumps(item.get("path")) if isinstance(item, dict) and isinstance(item.get("path"), str) else None
    position = text.find(needle) if needle else -1
    return text.count("\n", 0, position) + 1 if position >= 0 else 1


# --- checking what is staged ---------------------------------------------------------------------


def check_staging(ctx: CampaignContext, task_id: str, split: str, entries: list[ManifestEntry]) -> tuple[dict[str, ObjectInfo], dict[str, str]]:
    """Staged objects by manifest path, and the normalised-text digest of each text file among them;
    :class:`ReleaseError` if any is missing, altered or unlisted."""
    prefix = ctx.layout.staging(task_id, split)
    staged = {info.key[len(prefix):]: info for info in ctx.store.list_objects(prefix) if info.key[len(prefix):] != MANIFEST_NAME and not info.key.endswith("/")}
    problems, texts = [], {}
    for entry in entries:
        info = staged.get(entry.path)
        if info is None:
            problems.append(f"{prefix}{entry.path}: listed in {MANIFEST_NAME} but not staged (upload it, or remove it from the manifest)")
        elif info.size != entry.size:
            problems.append(f"{prefix}{entry.path}: {info.size} bytes staged, the manifest says {entry.size} (altered or truncated upload)")
        else:
            digests = content_digests(ctx.store, info.key)
            if digests.raw != entry.sha256:
                problems.append(f"{prefix}{entry.path}: sha256 differs from the manifest (altered file: stage it again or fix the manifest)")
            elif digests.text is not None:
                texts[entry.path] = digests.text
    listed = {entry.path for entry in entries}
    problems += [f"{prefix}{path}: staged but not listed in {MANIFEST_NAME} (list it with its sha256, or remove it)" for path in sorted(set(staged) - listed)]
    if problems:
        raise ReleaseError(f"staging of {task_id}/{split} does not match its manifest; nothing of it was released:\n  " + "\n  ".join(problems))
    return staged, texts


@dataclass(frozen=True)
class GoldDigests:
    """The task's ground truth as sha256 → key, of the bytes and of the normalised text."""

    raw: dict[str, str]
    text: dict[str, str]


def gold_digests(ctx: CampaignContext, task_id: str, sizes: set[int], text_sizes: set[int] = frozenset()) -> GoldDigests:
    """Digests of the task's ground-truth objects, so a copy staged by mistake is caught.

    Only gold objects that can be copies of a staged file are read: of the same size, or, for a
    staged text file, of a size within the factor that line ends and encodings change (x4).
    Gold files the run format's schema declares ``public`` (test inputs the validator also needs,
    such as the synthesis prompts or the retrieval collection) are no secret and are not compared.
    """
    public = public_gold_files(ctx.campaign.task(task_id).run_format)
    near_text = _NearSizes(text_sizes)
    raw: dict[str, str] = {}
    text: dict[str, str] = {}
    for split in SPLITS:
        prefix = ctx.layout.gold(task_id, split)
        for info in ctx.store.list_objects(prefix):
            if info.key[len(prefix):] in public or not (info.size in sizes or near_text(info.size)):
                continue
            digests = content_digests(ctx.store, info.key)
            raw.setdefault(digests.raw, info.key)
            if digests.text is not None:
                text.setdefault(digests.text, info.key)
    return GoldDigests(raw, text)


class _NearSizes:
    """Whether a size is within a factor of 4 (plus a few bytes) of one of ``sizes``."""

    def __init__(self, sizes: set[int]):
        self.sizes = sorted(sizes)

    def __call__(self, size: int) -> bool:
        position = bisect.bisect_left(self.sizes, size // 4 - 16)
        return position < len(self.sizes) and self.sizes[position] <= 4 * size + 16


def public_gold_files(run_format: str) -> set[str]:
    from include.schemas import load_schema

    files = (load_schema(run_format).get("gold") or {}).get("files") or []
    return {entry["file"] for entry in files if entry.get("public")}


def withheld_reason(entry: ManifestEntry, gold: GoldDigests, text_digest: str | None = None) -> str | None:
    if entry.ground_truth:
        return "marked ground_truth in the manifest"
    if "gold" in entry.path.split("/")[:-1]:
        return "inside a folder named gold"
    if entry.sha256 in gold.raw:
        return f"same bytes as the ground-truth object {gold.raw[entry.sha256]}"
    if text_digest is not None and text_digest in gold.text:
        return (f"same text as the ground-truth object {gold.text[text_digest]} "
                "(only line endings, byte-order mark or trailing blank space differ)")
    return None


# --- comparing contents --------------------------------------------------------------------------


@dataclass(frozen=True)
class ContentDigests:
    raw: str
    """sha256 of the bytes."""
    text: str | None
    """sha256 of the normalised text (UTF-8), or None for a binary or empty file."""


def content_digests(store, key: str) -> ContentDigests:
    """Both digests of an object, read once."""

    def digest(chunks) -> ContentDigests:
        raw, text = hashlib.sha256(), NormalisedText()
        for chunk in chunks:
            raw.update(chunk)
            text.feed(chunk)
        return ContentDigests(raw.hexdigest(), text.hexdigest())

    return store.read_chunks(key, digest)


class NormalisedText:
    """The sha256 of a file's text with the differences editors and systems introduce removed.

    Fed chunk by chunk: a byte-order mark picks UTF-8 or UTF-16 (else UTF-8); a NUL byte in the
    first chunk without a UTF-16 mark, or bytes that do not decode, make the file binary (no
    digest). CRLF and lone CR become LF; blank space at the very end is dropped.
    """

    _MARKS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))

    SNIFF_BYTES = 4096  # what decides the encoding and whether the file is binary

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.decoder = None
        self.binary = False
        self.start = b""  # the first bytes, until there are enough to sniff
        self.held = ""  # blank space not yet known to be inside the text
        self.written = 0

    def feed(self, chunk: bytes) -> None:
        if self.binary or not chunk:
            return
        if self.decoder is None:
            self.start += chunk
            if len(self.start) < self.SNIFF_BYTES:
                return
            chunk, self.start = self._sniff(self.start), b""
            if self.binary:
                return
        self._decode(chunk)

    def _decode(self, chunk: bytes, final: bool = False) -> None:
        try:
            self._emit(self.decoder.decode(chunk, final=final))
        except UnicodeDecodeError:
            self.binary = True

    def _sniff(self, chunk: bytes) -> bytes:
        for mark, encoding in self._MARKS:
            if chunk.startswith(mark):
                self.decoder = codecs.getincrementaldecoder(encoding)()
                return chunk[len(mark):]
        self.binary = b"\x00" in chunk
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        return chunk

    def _emit(self, text: str) -> None:
        text = self.held + text
        body = text.rstrip()
        self.held = text[len(body):]
        if body:
            body = body.replace("\r\n", "\n").replace("\r", "\n")
            self.digest.update(body.encode("utf-8"))
            self.written += len(body)

    def hexdigest(self) -> str | None:
        if self.decoder is None and self.start:
            chunk = self._sniff(self.start)
            if not self.binary:
                self._decode(chunk)
        if self.binary or self.decoder is None:
            return None
        self._decode(b"", final=True)
        return self.digest.hexdigest() if self.written and not self.binary else None


# --- publishing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleasePlan:
    """What a release of one task's split would do: the verified staging split into published and withheld."""

    staged: dict[str, ObjectInfo]
    published: list[ManifestEntry]
    withheld: list[dict[str, str]]


def plan_release(ctx: CampaignContext, task_id: str, split: str) -> ReleasePlan:
    """Read the manifest, verify the staging against it and sort each file into published or withheld;
    :class:`ReleaseError` as :func:`read_staging_manifest` and :func:`check_staging` raise it. Changes nothing."""
    ctx.campaign.task(task_id)
    entries = read_staging_manifest(ctx, task_id, split)
    staged, texts = check_staging(ctx, task_id, split, entries)
    gold = gold_digests(ctx, task_id, {entry.size for entry in entries}, {entry.size for entry in entries if entry.path in texts})
    published, withheld = [], []
    for entry in entries:
        reason = withheld_reason(entry, gold, texts.get(entry.path))
        if reason:
            withheld.append({"path": entry.path, "reason": reason})
        else:
            published.append(entry)
    return ReleasePlan(staged, published, withheld)


def release(ctx: CampaignContext, task_id: str, split: str) -> dict[str, Any]:
    """Verify, publish and announce one task's split; see the module docstring."""
    plan = plan_release(ctx, task_id, split)
    staged, published, withheld = plan.staged, plan.published, plan.withheld
    if not published:
        raise ReleaseError(f"{task_id}/{split}: every staged file is withheld as ground truth ({len(withheld)} file(s)); stage the participants' data")
    record = _publish(ctx, task_id, split, published, staged, withheld)
    notices = Notices(ctx, task_ids=(task_id,))
    tell_withheld(ctx, task_id, split, withheld, notices)
    mailed = [team["team_id"] for team in approved_teams(ctx, task_id) if send_release_notices(ctx, team, task_id, split, record, notices)]
    notices.raise_if_failed(f"release of {task_id}/{split}")
    return {
        "task": task_id,
        "split": split,
        "record_key": ctx.layout.release_record(task_id, split),
        "released": [entry.path for entry in published],
        "withheld": withheld,
        "teams_notified": mailed,
        "mail": notices.summary(),
    }


def tell_withheld(ctx: CampaignContext, task_id: str, split: str, withheld: list[dict[str, str]], notices: Notices) -> None:
    """E-mail the organizers (of the campaign and of the task) which staged files were withheld and why,
    once per set of withheld files (a retry or a re-run with the same staging sends nothing again)."""
    if not withheld:
        return
    fingerprint = hashlib.sha256(json.dumps(sorted((w["path"], w["reason"]) for w in withheld)).encode()).hexdigest()[:16]
    for organizer in organizer_addresses(ctx.campaign, [task_id]):
        notices.send("release-withheld", f"{task_id}.{split}.{fingerprint}", organizer,
                     task=ctx.campaign.task(task_id), split=split, split_label=SPLIT_LABELS[split], withheld=withheld,
                     staging=ctx.layout.staging(task_id, split), gold=ctx.layout.gold(task_id, split),
                     record_key=ctx.layout.release_record(task_id, split))


def _publish(ctx: CampaignContext, task_id: str, split: str, published: list[ManifestEntry], staged: dict[str, ObjectInfo], withheld: list[dict[str, str]]) -> dict[str, Any]:
    target = ctx.layout.releases(task_id, split)
    for entry in published:
        copy_if_changed(ctx.store, staged[entry.path].key, target + entry.path, staged[entry.path].etag)
    wanted = {target + entry.path for entry in published}
    for info in list(ctx.store.list_objects(target)):
        if info.key not in wanted:  # left by an earlier release of different staging: not part of this one
            ctx.store.delete(info.key)
    record = {
        "task": task_id,
        "split": split,
        "files": [{"path": e.path, "key": target + e.path, "size": e.size, "sha256": e.sha256} for e in published],
        "withheld": withheld,
        "manifest_sha256": ctx.store.sha256(ctx.layout.staging_manifest(task_id, split)),
    }
    put_json_if_changed(ctx.store, ctx.layout.release_record(task_id, split), record)
    return record


def release_record(ctx: CampaignContext, task_id: str, split: str) -> dict[str, Any] | None:
    """What the release of a task's split published, or None if it has not happened."""
    key = ctx.layout.release_record(task_id, split)
    return ctx.store.get_json(key) if ctx.store.head(key) is not None else None


# --- telling teams -------------------------------------------------------------------------------


def run_names(runs_allowed: int) -> list[str]:
    width = max(2, len(str(runs_allowed)))
    return [f"run-{number:0{width}d}" for number in range(1, runs_allowed + 1)]


def send_release_notices(ctx: CampaignContext, team: dict[str, Any], task_id: str, split: str, record: dict[str, Any], notices: Notices) -> bool:
    """Download links for one released split (and upload links with the test split), each mail once."""
    delivered = _send_download_links(ctx, team, task_id, split, record, notices)
    if split == "test":
        delivered = _send_upload_links(ctx, team, task_id, notices) and delivered
    return delivered


def release_records(ctx: CampaignContext, task_ids: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(task, split) → release record, for every split of these tasks already released."""
    records = {(task_id, split): release_record(ctx, task_id, split) for task_id in task_ids for split in SPLITS}
    return {pair: record for pair, record in records.items() if record is not None}


def send_released_data(ctx: CampaignContext, team: dict[str, Any], task_ids: list[str], notices: Notices, records: dict[tuple[str, str], dict[str, Any]] | None = None) -> list[str]:
    """For a team that registered or was approved after a release: the links of every split already out."""
    records = release_records(ctx, task_ids) if records is None else records
    sent = []
    for task_id in task_ids:
        released = [split for split in SPLITS if (task_id, split) in records]
        if not released or not may_receive_data(ctx, team, task_id):
            continue
        for split in released:
            if send_release_notices(ctx, team, task_id, split, records[(task_id, split)], notices):
                sent.append(f"{task_id}/{split}")
    return sent


def _expiry(ctx: CampaignContext, hours: int) -> str:
    return local_and_utc_text(ctx.campaign, ctx.now() + dt.timedelta(hours=hours))


def _send_download_links(ctx: CampaignContext, team: dict[str, Any], task_id: str, split: str, record: dict[str, Any], notices: Notices) -> bool:
    milestone = f"{task_id}.{split}.{team['team_id']}"
    hours = ctx.campaign.links.download_expiry_hours
    files = [dict(item, url=ctx.store.presigned_get(item["key"], hours * 3600)) for item in record["files"]]
    return notices.send(
        "data-links", milestone, team["contact_email"],
        team=team, task=ctx.campaign.task(task_id), split_label=SPLIT_LABELS[split], files=files,
        expires=_expiry(ctx, hours), dates=task_dates(ctx.campaign, task_id),
    )


def _send_upload_links(ctx: CampaignContext, team: dict[str, Any], task_id: str, notices: Notices, window: int = 0) -> bool:
    milestone = f"{task_id}.{team['team_id']}" + (f".w{window}" if window else "")
    task = ctx.campaign.task(task_id)
    hours = ctx.campaign.links.upload_expiry_hours
    runs = [{"name": name, "url": ctx.store.presigned_put(ctx.layout.submission(task_id, team["team_id"], name), hours * 3600)}
            for name in run_names(task.runs_allowed)]
    return notices.send(
        "upload-links", milestone, team["contact_email"],
        team=team, task=task, runs=runs, expires=_expiry(ctx, hours), renewed=window > 0,
        deadline=local_and_utc_text(ctx.campaign, ctx.campaign.milestone_time("run_deadline", task_id)),
    )


def upload_link_window(ctx: CampaignContext, task_id: str) -> int:
    """Which renewal period of the upload links ``now`` falls in (0: the links of the test release).

    A presigned URL lives at most 7 days (SigV4) while a test period often lasts weeks. Periods are a
    day shorter than the links' lifetime (at least half of it), so every team holds a working link
    from the test release to the deadline, whenever its previous links were signed.
    """
    hours = ctx.campaign.links.upload_expiry_hours
    period = dt.timedelta(hours=max(hours - 24, hours / 2))
    elapsed = ctx.now() - ctx.campaign.milestone_time("test_data_release", task_id)
    return max(0, int(elapsed / period))


def refresh_upload_links(ctx: CampaignContext, task_id: str) -> dict[str, Any]:
    """Send fresh upload links for the current renewal period, once per team; nothing after the deadline.

    Call it on a schedule (daily is enough) between the test release and the run deadline.
    """
    window = upload_link_window(ctx, task_id)
    deadline = ctx.campaign.milestone_time("run_deadline", task_id)
    if window == 0 or ctx.now() > deadline or release_record(ctx, task_id, "test") is None:
        return {"task": task_id, "window": window, "teams_notified": [], "mail": Notices(ctx).summary()}
    notices = Notices(ctx)
    mailed = [team["team_id"] for team in approved_teams(ctx, task_id) if _send_upload_links(ctx, team, task_id, notices, window)]
    notices.raise_if_failed(f"renewal of the upload links of {task_id}")
    return {"task": task_id, "window": window, "teams_notified": mailed, "mail": notices.summary()}
