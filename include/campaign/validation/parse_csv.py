"""Parsing a CSV run into a DataFrame of text columns, one row per record, with line numbers.

Python's ``csv`` module is used rather than ``pandas.read_csv`` because it keeps every record with
the number of fields it really has (``read_csv`` stops at the first line with too many and pads
lines with too few, indistinguishable from an empty last field) and says where each record starts
when quoted fields span lines, so every broken line can be reported. With the garbage collector
paused (see ``speed.py``) it is as fast as ``read_csv``: 0.12 s for a 100,000-line run.
"""
from __future__ import annotations

import csv
import io

import pandas as pd

from include.campaign.validation.findings import Example, Findings, StopValidation, quoted
from include.campaign.validation.locate import LINE
from include.campaign.validation.schema import RunSchema
from include.campaign.validation.speed import paused_gc

OTHER_DELIMITERS = {"\t": "a tab", ";": "';'", "|": "'|'", ",": "','"}
FIRST_LINE_WINDOW = 65536  # characters searched for the first non-blank line


def parse_csv(text: str, file: str, schema: RunSchema, findings: Findings) -> pd.DataFrame:
    """Columns named as the schema says, values stripped, plus ``__line__`` (1-based)."""
    spec = schema.file
    check_delimiter(text, file, spec.delimiter, findings)
    rows, lines = read_records(text, file, spec.delimiter, findings)
    rows, lines = apply_header_rule(rows, lines, file, schema, findings)
    rows = fix_field_counts(rows, lines, file, spec.columns, spec.delimiter, findings, spec.last_field_optional)
    with paused_gc():
        columns = _columns(rows, len(spec.columns))
        del rows  # the row lists are no longer needed; free them before building the frame
        if " " in text or "\t" in text:
            columns = [[value.strip() for value in values] for values in columns]
        frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in zip(spec.columns, columns)})
        del columns
    frame[LINE] = pd.Series(lines, dtype="int64")
    return frame


def _columns(rows: list[list[str]], width: int) -> list[tuple]:
    if not rows:
        return [()] * width
    return list(zip(*rows))


def check_delimiter(text: str, file: str, delimiter: str, findings: Findings) -> None:
    """Stop early when the first line plainly uses another delimiter (a tab or ';' for ',')."""
    first_line = next((line for line in text[:FIRST_LINE_WINDOW].splitlines() if line.strip()), "")
    if delimiter in first_line:
        return
    for candidate, name in OTHER_DELIMITERS.items():
        if candidate != delimiter and candidate in first_line:
            findings.add("csv.delimiter", f"fields are separated by {OTHER_DELIMITERS[delimiter]}",
                         Example(file=file, line=1, message=(
                             f"the file uses {name} as delimiter; this format separates fields with "
                             f"{OTHER_DELIMITERS[delimiter]}")))
            raise StopValidation


def read_records(text: str, file: str, delimiter: str, findings: Findings) -> tuple[list[list[str]], list[int]]:
    """Every non-blank record with the line it starts on; stops on malformed quoting."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        with paused_gc():
            rows = list(reader)
    except csv.Error as error:
        findings.add("csv.quoting", "quoted fields must be closed and followed by a delimiter",
                     Example(file=file, line=failing_record_line(text, delimiter),
                             message=f"malformed CSV: {explain_csv_error(error)}"))
        raise StopValidation
    physical_lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if len(rows) == physical_lines:
        # One record per line (the usual case): the record's index gives its line.
        lines = range(1, len(rows) + 1)
    else:
        # A quoted field spans lines, or lines end in a bare CR: count lines record by record.
        lines = record_start_lines(text, delimiter)
    if rows and min(map(len, rows)) < 2:
        kept = [i for i, row in enumerate(rows) if len(row) > 1 or (row and row[0].strip())]
        return [rows[i] for i in kept], [lines[i] for i in kept]
    return rows, list(lines)


def record_start_lines(text: str, delimiter: str) -> list[int]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    starts, previous_end = [], 0
    for _ in reader:
        starts.append(previous_end + 1)
        previous_end = reader.line_num
    return starts


def failing_record_line(text: str, delimiter: str) -> int:
    """The line on which the record that breaks the CSV syntax starts."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    previous_end = 0
    try:
        for _ in reader:
            previous_end = reader.line_num
    except csv.Error:
        pass
    return previous_end + 1


def explain_csv_error(error: csv.Error) -> str:
    text = str(error)
    if "unexpected end of data" in text:
        return "a quoted field opened on this line is never closed (unexpected end of data)"
    if "expected after" in text:
        return f"{text}: a quote inside a quoted field must be doubled (\"\")"
    return text


def header_looks_like(row: list[str], columns: list[str]) -> bool:
    lowered = [field.strip().lower() for field in row]
    return lowered == [c.lower() for c in columns] or (bool(lowered) and lowered[0] in {"id", columns[0].lower()})


def apply_header_rule(rows, lines, file: str, schema: RunSchema, findings: Findings):
    """Drop the header line when there is one, recording it when the format forbids it."""
    spec = schema.file
    if not rows:
        return rows, lines
    first = rows[0]
    header_text = spec.delimiter.join(spec.columns)
    if spec.header == "optional":
        marker = spec.header_first_field_contains
        is_header = marker in first[0] if marker else header_looks_like(first, spec.columns)
    elif spec.header == "forbidden":
        is_header = header_looks_like(first, spec.columns)
        if is_header:
            findings.add("csv.header", "no header line: every line is a result",
                         Example(file=file, line=lines[0], value=spec.delimiter.join(first), message=(
                             f"line {lines[0]} is a header ({quoted(spec.delimiter.join(first))}); this format has "
                             f"no header line, the first line must already be a result ({header_text} values)")))
    else:
        is_header = header_looks_like(first, spec.columns)
        if not is_header:
            findings.add("csv.header", f"the first line is the header {header_text}",
                         Example(file=file, line=lines[0], message=f"the first line must be the header {header_text}"))
    return (rows[1:], lines[1:]) if is_header else (rows, lines)


def fix_field_counts(rows, lines, file: str, columns: list[str], delimiter: str, findings: Findings,
                     last_optional: bool = False):
    """Record every record with the wrong number of fields, then pad or cut it to size so the
    rules about ids still see it (and a stray comma does not also report a missing id). With
    ``last_optional`` a record may stop before the last field, which then reads as empty."""
    width = len(columns)
    if not rows or set(map(len, rows)) == {width}:
        return rows
    if last_optional:
        for index, row in enumerate(rows):
            if len(row) == width - 1:
                rows[index] = row + [""]
    wrong = [index for index, row in enumerate(rows) if len(row) != width]
    layout = delimiter.join(columns)
    description = f"every line has {width} fields ({layout})"
    for index in wrong:
        count = len(rows[index])
        hint = ": a field holding the delimiter or a line break must be quoted" if count > width else ""
        findings.add("csv.field-count", description, Example(
            file=file, line=lines[index], value=delimiter.join(rows[index]),
            message=f"line {lines[index]} has {count} field{'s' if count != 1 else ''}, expected {width} ({layout}){hint}"))
        rows[index] = (rows[index] + [""] * width)[:width]
    return rows
