"""Parsing JSON and JSON-lines runs into a DataFrame, one row per record, with line numbers.

``json.loads`` reads a whole list but cannot say on which line each element starts, so a JSON list
is walked element by element with ``JSONDecoder.raw_decode`` (still the C scanner) to keep each
record's line for the report. Records are then checked field by field: present, of the JSON type
the schema allows, no field twice; unknown fields are reported as warnings.
"""
from __future__ import annotations

import bisect
import json
import re
from typing import Iterator

import pandas as pd

from include.campaign.validation.findings import Example, Findings, StopValidation, quoted
from include.campaign.validation.locate import LINE
from include.campaign.validation.schema import FieldSpec, RunSchema

DUPLICATE_KEYS = "\x00duplicate keys"
WHITESPACE = re.compile(r"[ \t\n\r]*")
JSON_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true/false",
                   list: "a list", dict: "an object", type(None): "null"}
SYNTAX_RULE = "json.syntax"
SYNTAX_DESCRIPTION = "the file must be valid JSON"


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON (use a number or null)")


def _pairs_to_dict(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) < len(pairs):
        seen: set[str] = set()
        result[DUPLICATE_KEYS] = sorted({key for key, _ in pairs if key in seen or seen.add(key)})
    return result


DECODER = json.JSONDecoder(parse_constant=_refuse_constant, object_pairs_hook=_pairs_to_dict)


class LineIndex:
    """Maps character offsets of a text to 1-based line numbers."""

    def __init__(self, text: str):
        self.starts = [0] + [match.end() for match in re.finditer("\n", text)]

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)


def _syntax_stop(findings: Findings, file: str, line: int, message: str):
    findings.add(SYNTAX_RULE, SYNTAX_DESCRIPTION, Example(file=file, line=line, message=message))
    raise StopValidation


def decode_at(text: str, position: int, lines: LineIndex, file: str, findings: Findings) -> tuple[object, int]:
    """One JSON value starting at ``position``; stops with the line and reason when invalid."""
    try:
        return DECODER.raw_decode(text, position)
    except json.JSONDecodeError as error:
        _syntax_stop(findings, file, error.lineno, f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}")
    except RecursionError:
        _syntax_stop(findings, file, lines.line(position), f"invalid JSON at line {lines.line(position)}: nested too deeply")
    except ValueError as error:
        _syntax_stop(findings, file, lines.line(position), f"invalid JSON at line {lines.line(position)}: {error}")


def iter_json_list(text: str, file: str, findings: Findings) -> Iterator[tuple[int, object]]:
    """(line, element) for each element of the top-level JSON list."""
    lines = LineIndex(text)
    position = WHITESPACE.match(text, 0).end()
    if not text.startswith("[", position):
        if text.startswith("{", position):
            _syntax_stop(findings, file, lines.line(position),
                         "the file holds a single JSON object; this format expects a JSON list of objects: [{...}, {...}]")
        decode_at(text, position, lines, file, findings)
        _syntax_stop(findings, file, lines.line(position), "the file must hold a JSON list of objects: [{...}, {...}]")
    position = WHITESPACE.match(text, position + 1).end()
    if text.startswith("]", position):
        position += 1
    else:
        while True:
            value, end = decode_at(text, position, lines, file, findings)
            yield lines.line(position), value
            position = WHITESPACE.match(text, end).end()
            if text.startswith(",", position):
                position = WHITESPACE.match(text, position + 1).end()
                continue
            if text.startswith("]", position):
                position += 1
                break
            reason = "the list is never closed with ]" if position >= len(text) else "expected ',' or ']' after a list element"
            _syntax_stop(findings, file, lines.line(position), f"invalid JSON at line {lines.line(position)}: {reason}")
    rest = WHITESPACE.match(text, position).end()
    if rest < len(text):
        _syntax_stop(findings, file, lines.line(rest), f"invalid JSON at line {lines.line(rest)}: unexpected text after the closing ]")


def iter_json_lines(text: str, file: str, findings: Findings) -> Iterator[tuple[int, object]]:
    """(line, value) for each non-blank line; a broken line is recorded and skipped."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value, end = DECODER.raw_decode(line, WHITESPACE.match(line, 0).end())
            if line[end:].strip():
                raise json.JSONDecodeError("unexpected text after the object (one object per line)", line, end)
        except json.JSONDecodeError as error:
            findings.add(SYNTAX_RULE, "every line must be one valid JSON object", Example(
                file=file, line=number, message=f"invalid JSON at line {number}, column {error.colno}: {error.msg}"))
            continue
        except (RecursionError, ValueError) as error:
            reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
            findings.add(SYNTAX_RULE, "every line must be one valid JSON object",
                         Example(file=file, line=number, message=f"invalid JSON at line {number}: {reason}"))
            continue
        yield number, value


def json_type_name(value: object) -> str:
    return JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def field_value(record: dict, spec: FieldSpec, line: int, file: str, findings: Findings) -> object:
    """The field's value converted as the schema says, or None after recording a type error."""
    value = record[spec.name]
    allowed = spec.json_types or ["string"]
    ok = (
        ("string" in allowed and isinstance(value, str))
        or ("integer" in allowed and isinstance(value, int) and not isinstance(value, bool))
        or ("number" in allowed and isinstance(value, (int, float)) and not isinstance(value, bool))
        or ("boolean" in allowed and isinstance(value, bool))
    )
    if not ok:
        expected = " or ".join({"string": "a string", "integer": "an integer", "number": "a number",
                                "boolean": "true/false"}[name] for name in allowed)
        findings.add(f"{spec.name}.type", f"{spec.label} ({spec.name}) is {expected}", Example(
            file=file, line=line, value=json.dumps(value)[:200],
            message=f"field {quoted(spec.name)} is {json_type_name(value)} ({json.dumps(value)[:60]}), expected {expected}"))
        return None
    if spec.coerce == "str" and not isinstance(value, str):
        return str(value)
    return value


def check_object(value: object, line: int, file: str, findings: Findings, warnings: Findings, known: set[str]) -> bool:
    """True when ``value`` is an object; records duplicate and unknown keys."""
    if not isinstance(value, dict):
        findings.add("json.record-type", "every element is a JSON object {...}", Example(
            file=file, line=line, message=f"the element at line {line} is {json_type_name(value)}, expected an object {{...}}"))
        return False
    for key in value.get(DUPLICATE_KEYS, []):
        findings.add("json.duplicate-field", "no field twice in one object", Example(
            file=file, line=line, message=f"field {quoted(key)} appears twice in the object at line {line}"))
    for key in value:
        if key not in known and key != DUPLICATE_KEYS:
            warnings.add("json.unknown-field", "fields the format does not define are ignored", Example(
                file=file, line=line, message=f"field {quoted(key)} is not part of this format and is ignored"))
    return True


def records_to_frame(items, file: str, schema: RunSchema, findings: Findings, warnings: Findings) -> pd.DataFrame:
    """One row per object, one column per schema field; missing or mistyped values are None."""
    specs = schema.fields
    columns: dict[str, list] = {spec.name: [] for spec in specs}
    lines: list[int] = []
    known = {spec.name for spec in specs}
    for line, value in items:
        if not check_object(value, line, file, findings, warnings, known):
            continue
        lines.append(line)
        for spec in specs:
            if spec.name not in value:
                findings.add(f"{spec.name}.missing", f"every object has the field {quoted(spec.name)}", Example(
                    file=file, line=line, message=f"the object at line {line} has no field {quoted(spec.name)}"))
                columns[spec.name].append(None)
            else:
                columns[spec.name].append(field_value(value, spec, line, file, findings))
    return _frame(columns, lines)


def wide_to_frame(items, file: str, schema: RunSchema, findings: Findings, warnings: Findings) -> pd.DataFrame:
    """MAGIC closed VQA: ``{key_field: id, "<item key>": value, ...}`` to one row per item."""
    wide = schema.file.wide
    key_spec, value_spec = schema.field(wide.key_field), schema.field(wide.value_column)
    item_pattern = re.compile(wide.item_key_pattern)
    columns: dict[str, list] = {spec.name: [] for spec in schema.fields}
    lines: list[int] = []
    for line, value in items:
        if not check_object(value, line, file, findings, warnings, set(value) if isinstance(value, dict) else set()):
            continue
        if wide.key_field not in value:
            findings.add(f"{wide.key_field}.missing", f"every object has the field {quoted(wide.key_field)}", Example(
                file=file, line=line, message=f"the object at line {line} has no field {quoted(wide.key_field)}"))
            key = None
        else:
            key = field_value(value, key_spec, line, file, findings)
        for item_key, item_value in value.items():
            if item_key in (wide.key_field, DUPLICATE_KEYS):
                continue
            match = item_pattern.fullmatch(item_key)
            if match is None:
                findings.add(f"{wide.item_column}.pattern", f"every other key is a question id, {wide.item_key_hint}", Example(
                    file=file, line=line, value=item_key,
                    message=f"key {quoted(item_key)} is not a question id (expected {wide.item_key_hint})"))
                continue
            value_spec_record = {value_spec.name: item_value}
            columns[wide.key_field].append(key)
            columns[wide.item_column].append(item_key)
            for group, group_value in match.groupdict().items():
                columns[group].append(group_value)
            columns[wide.value_column].append(field_value(value_spec_record, value_spec, line, file, findings))
            lines.append(line)
    return _frame(columns, lines)


def _frame(columns: dict[str, list], lines: list[int]) -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns.items()})
    frame[LINE] = pd.Series(lines, dtype="int64")
    return frame


def parse_json_run(text: str, file: str, schema: RunSchema, findings: Findings, warnings: Findings) -> pd.DataFrame:
    """The run's records as a DataFrame (list or lines, records or wide shape)."""
    items = iter_json_lines(text, file, findings) if schema.file.type == "jsonl" else iter_json_list(text, file, findings)
    if schema.file.shape == "wide":
        return wide_to_frame(items, file, schema, findings, warnings)
    return records_to_frame(items, file, schema, findings, warnings)
