"""``validate_run``: parse a run, check it against its schema and gold, report what is wrong.

The steps, each recording findings and stopping early only when the run cannot be read further:
open the file within the run limits (``source``), decode and parse it into a DataFrame with the
line or member of every row (``parse_*``), run the schema's row rules as a Great Expectations
suite (``expectations``), then the set-level rules against the gold (``rules``). A valid run also
comes back as the canonical DataFrame the metrics consume (``docs/format-contract.md``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from include.campaign.validation import derived, rules
from include.campaign.validation.expectations import run_suite, suite_rules
from include.campaign.validation.findings import Example, Findings, StopValidation
from include.campaign.validation.gold import GoldEntry, gold_entry
from include.campaign.validation.limits import RunLimits
from include.campaign.validation.locate import Locator
from include.campaign.validation.parse_csv import parse_csv
from include.campaign.validation.parse_images import read_images
from include.campaign.validation.parse_json import parse_json_run
from include.campaign.validation.report import build_report, render_text
from include.campaign.validation.schema import RunSchema, task_schema
from include.campaign.validation.source import RunSource, open_run
from include.campaign.validation.speed import paused_gc
from include.campaign.validation.text import decode_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationOutcome:
    """The result of validating one run."""

    report: dict
    """JSON-able; ``report["verdict"]`` is ``"valid"`` or ``"invalid"``."""
    text: str
    """The report as plain text, for e-mail."""
    run: pd.DataFrame | None
    """The run in the contract's canonical columns, or None when invalid."""
    gold: dict[str, pd.DataFrame]
    """The task's gold tables, keyed as the contract says."""

    @property
    def valid(self) -> bool:
        return self.report["verdict"] == "valid"


@dataclass
class ParsedRun:
    frame: pd.DataFrame
    locator: Locator
    lists: dict[str, list]


def validate_run(format_name: str, run_path, gold_dir, limits: RunLimits | None = None,
                 task_id: str | None = None, options: dict | None = None) -> ValidationOutcome:
    """Validate the run at ``run_path`` against format ``format_name`` and the gold in ``gold_dir``
    (a folder, or a :class:`GoldEntry` already loaded).

    ``task_id`` and ``options`` are the campaign task's id and ``format_options``: the report names
    that task, and the options (a concept-id pattern, its wording) replace the format's defaults.
    Never raises because of the run's content; raises ``KeyError`` for an unknown format,
    ``ValueError`` for a bad option and ``GoldError`` for a broken gold folder.
    """
    schema = task_schema(format_name, task_id, options)
    # A prepared GoldEntry (the submission check's public test inputs) is used as it is.
    gold = gold_dir if isinstance(gold_dir, GoldEntry) else gold_entry(format_name, gold_dir)
    limits = limits or RunLimits()
    path = Path(run_path)
    findings, warnings = Findings(), Findings()
    counts: dict = {"rows": 0}
    parsed = None
    source = RunSource(path, limits, findings)
    try:
        with paused_gc():  # parsing builds many acyclic objects at once (see speed.py)
            parsed = parse_run(source, schema, findings, warnings)
        counts["rows"] = len(parsed.frame)
        counts.update(check_run(parsed, schema, gold, findings))
    except StopValidation:
        pass
    # The promise is a report, never a traceback: anything unexpected is logged for developers
    # and reported as a refusal the participant can forward to the organizers.
    except Exception as error:
        logger.exception("validator failed on %s", path)
        findings.add("validator.internal-error", "the validator must be able to read the run", Example(
            file=path.name, message=f"the validator could not read this run ({type(error).__name__}); "
                                    "please forward this report to the task organizers"))
    finally:
        source.close()
    report = build_report(schema, path.name, counts, findings, warnings, limits)
    with paused_gc():
        run = canonical_run(parsed, schema) if parsed is not None and not findings else None
    return ValidationOutcome(report=report, text=render_text(report), run=run, gold=gold.copies())


def parse_run(source: RunSource, schema: RunSchema, findings: Findings, warnings: Findings) -> ParsedRun:
    members = open_run(source, schema)
    if schema.file.type in ("png", "tiff"):
        frame = read_images(source, members, schema, findings)
        file = source.display_name
    else:
        member = members[0]
        data = source.read_member(member)
        if data is None:
            raise StopValidation
        file = member.name
        text = decode_text(data, file, findings)
        if schema.file.type == "csv":
            frame = parse_csv(text, file, schema, findings)
        else:
            frame = parse_json_run(text, file, schema, findings, warnings)
    lists = {field.name: derived.add_list_columns(frame, field) for field in schema.fields if field.list}
    return ParsedRun(frame=frame, locator=Locator(frame, file), lists=lists)


def check_run(parsed: ParsedRun, schema: RunSchema, entry: GoldEntry, findings: Findings) -> dict:
    """Row rules (GX suite) then set-level rules (pandas); returns the coverage counts."""
    frame, locator, gold = parsed.frame, parsed.locator, entry.tables
    run_suite(frame, suite_rules(schema, gold, frame.columns), locator, findings, suite_name=schema.format)
    rules.check_large_allowed_sets(frame, schema, gold, locator, findings)
    rules.check_id_values(frame, schema, locator, findings)
    expected = entry.index(schema.ids.expected_from.key, schema.ids.expected_from.column)
    match = rules.IdMatch.of(frame, schema.ids.column, expected)
    if schema.ids.unique:
        rules.check_duplicates(frame, schema, match, locator, findings)
    counts = {"ids_unknown": rules.check_unknown(frame, schema, match, locator, findings)}
    counts.update(rules.check_coverage(frame, schema, gold, expected, match, locator, findings))
    if schema.ids.count_per_id:
        rules.check_count_per_id(frame, schema, expected, locator, findings)
    if schema.complete_sequence:
        rules.check_complete_sequence(frame, schema, expected, locator, findings)
    if schema.ids.pairs_from:
        rules.check_pairs(frame, schema, gold, expected, locator, findings)
    rules.check_references(frame, schema, gold, locator, findings)
    rules.check_single_values(frame, schema, locator, findings)
    rules.check_matches_gold(frame, schema, gold, locator, findings)
    if schema.file.size_from_gold:
        rules.check_sizes(frame, schema, gold, locator, findings)
    return counts


def canonical_run(parsed: ParsedRun, schema: RunSchema) -> pd.DataFrame:
    """The columns and types of the contract (``docs/format-contract.md``)."""
    frame = parsed.frame.copy()
    for name, lists in parsed.lists.items():
        frame[name] = pd.Series(lists, index=frame.index, dtype=object)
    for field in schema.fields:
        if field.canonical == "int" or field.json_types == ["integer"]:
            frame[field.name] = frame[field.name].astype("int64")
    for column in ("width", "height"):
        if column in schema.canonical_columns:
            frame[column] = frame[column].astype("int64")
    return frame[schema.canonical_columns].reset_index(drop=True)
