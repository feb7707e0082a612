"""Receipts within minutes of an upload: every new version under ``submissions/<task>/`` is checked once.

During a task's test phase :func:`check` lists the versions of every uploaded run (portal form or
``curl -T`` on an e-mailed link), and for each version without a receipt yet it records one under
``receipts/<task>/<team>/<run>/<version>.json``: the store's own upload time, size, sha256, the run
slot, and the verdict of the run-format validation. The team's contact receives one e-mail per
version (the outbox): received, valid, or the validation report's first problems with their lines.

A version larger than the task's ``max_bytes`` is refused without being read, with a receipt that
says so; uploads under a slot that does not exist, by a team that may not take part, or after the
deadline are recorded as refused or late. The check decides nothing about scoring: collection at
the deadline still picks the runs that count.

Validation uses the public test inputs only, never the answers: :func:`public_gold` keeps of the
task's gold the files the run format declares ``public`` and, of the other files, the columns that
describe the test inputs (the test ids, their groups and question pairs, the image sizes); answer
columns are blanked and a column whose values are an allowed vocabulary keeps only the sorted set of
values, not which item has which. A receipt therefore never tells a team anything about the answers.
:func:`released_inputs` builds the same tables from what a participant received (the released list of
test items, or the released public input files), so ``validate --inputs`` checks a test run locally
as the receipt will.
"""
from __future__ import annotations

import hashlib
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from include.campaign.context import CampaignContext
from include.campaign.layout import UnsafeKeyError, segment
from include.campaign.release import run_names
from include.campaign.store import ObjectInfo
from include.campaign.teams import Notices, local_and_utc_text, in_utc, load_team, may_receive_data, agreement_status

PURPOSE = "upload-receipt"
PROBLEMS_SHOWN = 5
VALID, INVALID, REFUSED, LATE = "valid", "invalid", "refused", "late"


@dataclass(frozen=True)
class UploadVersion:
    task: str
    team: str
    run: str
    version: ObjectInfo

    @property
    def version_segment(self) -> str:
        return version_segment(self.version.version_id)


def version_segment(version_id: str | None) -> str:
    """A key-safe name for an upload version (S3 version ids may hold characters keys refuse here)."""
    text = version_id or "null"
    try:
        return segment(text)
    except UnsafeKeyError:
        return "v-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# --- the check ---------------------------------------------------------------------------------------


def check(ctx: CampaignContext, task_id: str) -> dict[str, Any]:
    """Receipt and e-mail for every upload version of the task not seen before; safe to run again."""
    ctx.campaign.task(task_id)
    notices = Notices(ctx)
    checked, seen, ignored = [], 0, []
    validator = PublicValidator(ctx, task_id)
    teams: dict[str, dict | None] = {}  # team records read once per check
    # Two listings tell which versions were checked and mailed already: a pass with nothing new
    # costs no request per version.
    receipts = set(ctx.store.list_keys(ctx.layout.receipts(task_id)))
    mailed = set(ctx.outbox.sent_markers(PURPOSE))
    for upload, problem in uploads(ctx, task_id):
        if upload is None:
            ignored.append(problem)
            continue
        key = ctx.layout.receipt(task_id, upload.team, upload.run, upload.version_segment)
        if key not in receipts:
            receipt = make_receipt(ctx, upload, validator)
            ctx.store.create_json_once(key, receipt)
            checked.append({"team": upload.team, "run": upload.run, "status": receipt["status"]})
        else:
            seen += 1
            team = _team(ctx, upload.team, teams)
            if team is None or ctx.outbox.key(PURPOSE, _milestone(task_id, upload.team, upload.run, upload.version_segment), team["contact_email"]) in mailed:
                continue
            receipt = ctx.store.get_json(key)
        notify(ctx, receipt, notices, teams)  # sends only what the outbox has not sent (e.g. after an SMTP outage)
    notices.raise_if_failed(f"submission check of {task_id}")
    return {"task": task_id, "checked": checked, "already_checked": seen, "ignored": ignored, "mail": notices.summary()}


def uploads(ctx: CampaignContext, task_id: str) -> list[tuple[UploadVersion | None, str | None]]:
    prefix = ctx.layout.submissions(task_id)
    found = []
    for version in ctx.store.list_versions(prefix):
        parts = version.key[len(prefix):].split("/")
        if len(parts) != 2 or not all(parts):
            found.append((None, f"{version.key}: not of the form submissions/<task>/<team>/<run>"))
            continue
        try:
            segment(parts[0]), segment(parts[1])
        except UnsafeKeyError as problem:
            found.append((None, f"{version.key}: {problem}"))
            continue
        found.append((UploadVersion(task_id, parts[0], parts[1], version), None))
    return found


def make_receipt(ctx: CampaignContext, upload: UploadVersion, validator: "PublicValidator") -> dict[str, Any]:
    task = ctx.campaign.task(upload.task)
    limits = ctx.campaign.task_run_limits(task)
    deadline = ctx.campaign.milestone_time("run_deadline", task.id)
    version = upload.version
    receipt = {
        "task": task.id, "team": upload.team, "run": upload.run, "key": version.key, "version_id": version.version_id,
        "version": upload.version_segment, "size": version.size, "received_at": in_utc(version.last_modified),
        "checked_at": in_utc(ctx.now()), "deadline": in_utc(deadline), "max_bytes": limits.max_bytes,
        "sha256": None, "status": None, "reason": None, "summary": None, "problems": [], "report": None,
    }
    refusal = _refusal(ctx, upload, task.runs_allowed, limits.max_bytes)
    if refusal:
        return {**receipt, "status": REFUSED, "reason": refusal}
    if version.last_modified > deadline:
        sha = ctx.store.sha256(version.key, version.version_id)
        return {**receipt, "sha256": sha, "status": LATE, "reason": f"uploaded after the run deadline ({local_and_utc_text(ctx.campaign, deadline)}): it does not count"}
    sha, report = validator.validate(version, limits)
    return {**receipt, "sha256": sha, "status": VALID if report["verdict"] == "valid" else INVALID, "summary": report["summary"],
            "problems": first_problems(report), "report": report}


def _refusal(ctx: CampaignContext, upload: UploadVersion, runs_allowed: int, max_bytes: int) -> str | None:
    team = load_team(ctx, upload.team)
    if team is None:
        return f"no registered team {upload.team!r}"
    if not may_receive_data(ctx, team, upload.task):
        if upload.task not in team["tasks"]:
            return f"team {upload.team} is not registered for {upload.task}"
        return f"team {upload.team}'s user agreement for {upload.task} is {agreement_status(ctx, team, upload.task)}, not approved"
    slots = run_names(runs_allowed)
    if upload.run not in slots:
        return f"{upload.run!r} is not a run slot of this task (slots: {slots[0]} to {slots[-1]})"
    if upload.version.size > max_bytes:
        return f"{upload.version.size} bytes is over this task's limit of {max_bytes} bytes: this upload was not read and never counts"
    if upload.version.size == 0:
        return "the upload is empty (0 bytes); upload the file with curl -T FILE URL or the portal's form"
    return None


def first_problems(report: dict[str, Any]) -> list[str]:
    """The first example of each broken rule, with its file and line, at most :data:`PROBLEMS_SHOWN`."""
    lines = []
    for finding in report.get("rules_broken", [])[:PROBLEMS_SHOWN]:
        example = (finding.get("examples") or [None])[0]
        if example is None:
            lines.append(f"{finding['description']} [{finding['rule']}]")
            continue
        where = example.get("file") or ""
        if example.get("line") is not None:
            where += f" line {example['line']}"
        elif example.get("member") is not None:
            where += f" member {example['member']}"
        lines.append(f"{where}: {example['message']} [{finding['rule']}]".strip())
    return lines


def _team(ctx: CampaignContext, team_id: str, teams: dict[str, dict | None]) -> dict | None:
    if team_id not in teams:
        teams[team_id] = load_team(ctx, team_id)
    return teams[team_id]


def _milestone(task_id: str, team_id: str, run: str, version: str) -> str:
    return f"{task_id}.{team_id}.{run}.{version}"


def notify(ctx: CampaignContext, receipt: dict[str, Any], notices: Notices, teams: dict[str, dict | None] | None = None) -> None:
    team = _team(ctx, receipt["team"], {} if teams is None else teams)
    if team is None:
        return  # nobody to tell: an upload under an id no team holds
    milestone = _milestone(receipt["task"], receipt["team"], receipt["run"], receipt["version"])
    if ctx.outbox.already_sent(PURPOSE, milestone, team["contact_email"]):
        return
    notices.send(PURPOSE, milestone, team["contact_email"], team=team, task=ctx.campaign.task(receipt["task"]), receipt=receipt,
                 received=local_and_utc_text(ctx.campaign, pd.Timestamp(receipt["received_at"]).to_pydatetime()),
                 deadline=local_and_utc_text(ctx.campaign, pd.Timestamp(receipt["deadline"]).to_pydatetime()))


def team_receipts(ctx: CampaignContext, task_id: str, team_id: str) -> list[dict[str, Any]]:
    """The team's receipts for a task, newest upload first (what the portal shows)."""
    prefix = ctx.layout.receipts(task_id, team_id)
    receipts = [ctx.store.get_json(info.key) for info in ctx.store.list_objects(prefix) if info.key.endswith(".json")]
    return sorted(receipts, key=lambda r: (r["received_at"], r["run"]), reverse=True)


# --- validation with the public test inputs ------------------------------------------------------------


class PublicValidator:
    """Validates upload versions of one task against :func:`public_gold`, loaded once per check."""

    def __init__(self, ctx: CampaignContext, task_id: str):
        self.ctx = ctx
        self.task = ctx.campaign.task(task_id)
        self._gold = None

    def gold(self):
        if self._gold is None:
            from include.campaign.evaluation.gold import gold_copy
            from include.campaign.validation.gold import gold_entry

            folder = gold_copy(self.ctx, self.task.id).folder
            self._gold = public_gold(self.task.run_format, gold_entry(self.task.run_format, folder))
        return self._gold

    def validate(self, version: ObjectInfo, limits) -> tuple[str, dict[str, Any]]:
        from include.campaign.validation import validate_run

        name = version.key.rsplit("/", 1)[-1]
        with tempfile.TemporaryDirectory(prefix="clef-upload-") as folder:
            path = Path(folder) / segment(name)
            self.ctx.store.download(version.key, str(path), version.version_id)
            sha = _file_sha256(path)
            outcome = validate_run(self.task.run_format, path, self.gold(), limits,
                                   self.task.id, self.task.format_options)
        return sha, outcome.report


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def input_columns(schema) -> dict[str, set[str]]:
    """Per gold table, the columns that describe the test inputs (not the answers)."""
    columns: dict[str, set[str]] = defaultdict(set)
    ids = schema.ids
    columns[ids.expected_from.key].add(ids.expected_from.column)
    if ids.group_column:
        columns[ids.expected_from.key].add(ids.group_column)
    if ids.pairs_from:
        columns[ids.pairs_from.key].update(ids.pairs_from.columns)
    for reference in schema.references:
        columns[reference.in_.key].add(reference.in_.column)
    for rule in schema.matches_gold:
        columns[ids.expected_from.key].add(rule.column)
    if schema.file.size_from_gold:
        columns[schema.file.size_from_gold.key].add(schema.file.size_from_gold.column)
    return columns


def public_gold(format_name: str, entry):
    """A :class:`GoldEntry` with the test inputs of ``entry`` and none of its answers (module docstring)."""
    from include.campaign.validation.gold import GoldEntry
    from include.campaign.validation.schema import run_schema

    schema = run_schema(format_name)
    inputs = input_columns(schema)
    public = {spec.key for spec in schema.gold.files if spec.public}
    vocabularies = {(f.allowed_from_gold.key, f.allowed_from_gold.column) for f in schema.fields if f.allowed_from_gold}
    size_source = schema.file.size_from_gold.key if schema.file.size_from_gold else None
    tables = {}
    for key, table in entry.tables.items():
        if key in public:
            tables[key] = table.copy()
            continue
        redacted = table.copy()
        for column in redacted.columns:
            if column in inputs.get(key, set()):
                continue
            if key == size_source and column == "mask":
                redacted[column] = pd.Series([np.zeros(np.shape(mask), dtype=bool) for mask in table[column]], index=table.index, dtype=object)
            elif (key, column) in vocabularies:
                redacted[column] = _vocabulary_only(table[column])
            else:
                redacted[column] = _blank(table[column])
        tables[key] = redacted
    return GoldEntry(tables)


def _vocabulary_only(values: pd.Series) -> pd.Series:
    """The sorted distinct values, repeated over the rows: the set survives, the item-value pairs do not."""
    vocabulary = sorted({str(v) for v in values.dropna()})
    if not vocabulary:
        return pd.Series([None] * len(values), index=values.index, dtype=object)
    return pd.Series([vocabulary[i % len(vocabulary)] for i in range(len(values))], index=values.index, dtype=object)


def _blank(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(np.zeros(len(values), dtype=values.dtype), index=values.index)
    placeholder = [] if len(values) and isinstance(values.iloc[0], list) else ""
    return pd.Series([type(placeholder)() for _ in range(len(values))], index=values.index, dtype=object)


# --- the public test inputs a participant holds (``validate --inputs``) -----------------------------


class InputsError(ValueError):
    """The public test inputs given to ``validate --inputs`` cannot stand in for the gold; the message says why."""


def released_inputs(format_name: str, path) -> "GoldEntry":
    """What a participant received as test inputs, as the :class:`GoldEntry` the validator reads, with
    the same columns :func:`public_gold` keeps for the receipts and every answer column blank.

    For a format whose gold declares public files (Touché's ``arguments.csv`` and ``images.txt``,
    the VQA-GI prompts), ``path`` is the folder of those released files, read by their gold names.
    Otherwise ``path`` is the released list of test items: a CSV file with a header, a JSON list (of
    objects, or of ids), or a text file with one id per line, holding the columns the format checks
    runs against (the item id, and e.g. each question's ``language``)."""
    from include.campaign.validation.gold import GoldEntry, load_gold_file
    from include.campaign.validation.schema import run_schema

    schema = run_schema(format_name)
    _refuse_what_needs_gold(schema)
    public = [spec for spec in schema.gold.files if spec.public]
    path = Path(path)
    expected = schema.ids.expected_from.key
    if public:
        if not path.is_dir():
            raise InputsError(f"{path}: for {format_name} --inputs is the folder of the released test inputs "
                              f"({', '.join(spec.path_name for spec in public)})")
        tables = {spec.key: load_gold_file(path, spec, schema) for spec in public}
        items = None
    else:
        if not path.is_file():
            raise InputsError(f"{path}: for {format_name} --inputs is the released list of test items (a CSV, JSON or text file)")
        tables, items = {}, read_item_list(path, sorted(input_columns(schema)[expected]))
    for spec in schema.gold.files:
        if spec.key not in tables and not spec.needed_by:
            tables[spec.key] = _inputs_table(spec, items if spec.key == expected else None)
    return GoldEntry(tables)


def _refuse_what_needs_gold(schema) -> None:
    """A format whose checks read more than a participant receives cannot be checked with the inputs alone."""
    if schema.file.size_from_gold:
        raise InputsError(f"{schema.format} checks each mask's size against the test masks, which participants do not receive: "
                          f"validate with --gold (the development data) instead")
    inputs = input_columns(schema)
    for spec in schema.fields:
        source = spec.allowed_from_gold
        if source and source.column not in inputs.get(source.key, set()):
            raise InputsError(f"{schema.format} checks {spec.name} against the values of the test gold's {source.column}: "
                              f"validate with --gold (the development data) instead")


def read_item_list(path: Path, columns: list[str]) -> pd.DataFrame:
    """The ``columns`` of the item list at ``path`` (matched case-insensitively), as strings."""
    import json

    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        elif path.suffix.lower() == ".json":
            records = json.loads(path.read_text(encoding="utf-8-sig"))
            if not isinstance(records, list):
                raise InputsError(f"{path}: a JSON item list is a list of objects or of ids")
            frame = pd.DataFrame.from_records(records) if all(isinstance(r, dict) for r in records) else pd.DataFrame({columns[0]: records})
        else:
            frame = pd.DataFrame({columns[0]: [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]})
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as error:
        if isinstance(error, InputsError):
            raise
        raise InputsError(f"{path}: cannot be read as a list of test items: {error}") from None
    return _item_columns(frame, path, columns)


def _item_columns(frame: pd.DataFrame, path: Path, columns: list[str]) -> pd.DataFrame:
    if frame.empty:
        raise InputsError(f"{path}: lists no test items")
    by_name = {str(column).casefold(): column for column in frame.columns}
    missing = [column for column in columns if column.casefold() not in by_name]
    if missing:
        raise InputsError(f"{path}: no column {', '.join(missing)} (it has: {', '.join(map(str, frame.columns))}); "
                          f"the test items need {', '.join(columns)}")
    return pd.DataFrame({column: [str(value).strip() for value in frame[by_name[column.casefold()]]] for column in columns})


def _inputs_table(spec, items: pd.DataFrame | None) -> pd.DataFrame:
    """A gold table of ``spec``'s columns: the items' input columns, every other column blank."""
    rows = 0 if items is None else len(items)
    table = {}
    for column in spec.columns:
        if items is not None and column in items.columns:
            table[column] = pd.Series(items[column].tolist(), dtype=object)
        elif column in spec.int_columns:
            table[column] = pd.Series(np.zeros(rows, dtype="int64"))
        elif column in spec.list_columns:
            table[column] = pd.Series([[] for _ in range(rows)], dtype=object)
        else:
            table[column] = pd.Series([""] * rows, dtype=object)
    return pd.DataFrame(table)
