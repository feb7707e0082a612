"""Loading the organizers' gold folder of a task into ``dict[str, DataFrame]``.

The layout per format is written in the schema's ``gold`` section and in
``docs/format-contract.md``. Gold files are staged by organizers, not participants, but a broken
one still gets a clear message: :class:`GoldError` names the file and what is wrong.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from include.campaign.validation.findings import Findings, StopValidation
from include.campaign.validation.schema import GoldFileSpec, RunSchema, run_schema


class GoldError(Exception):
    """The gold folder of a task is missing a file or holds a malformed one."""


def load_gold(format_name: str, gold_dir) -> dict[str, pd.DataFrame]:
    """Every gold table of ``format_name`` read from ``gold_dir``, keyed as the contract says."""
    schema = run_schema(format_name)
    folder = Path(gold_dir)
    if not folder.is_dir():
        raise GoldError(f"gold folder {folder} does not exist or is not a folder")
    return {spec.key: load_gold_file(folder, spec, schema) for spec in schema.gold.files}


def load_gold_file(folder: Path, spec: GoldFileSpec, schema: RunSchema) -> pd.DataFrame:
    path = folder / spec.path_name
    if not path.exists():
        raise GoldError(f"gold file {path} is missing ({schema.format} needs {spec.path_name}: {', '.join(spec.columns)})")
    loaders = {"csv": read_gold_csv, "json-list": read_gold_json, "lines": read_gold_lines,
               "mask-folder": read_gold_masks, "run-format": read_gold_as_run}
    try:
        frame = loaders[spec.kind](path, spec, schema)
    except GoldError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise GoldError(f"gold file {path} cannot be read: {error}") from None
    return frame.reset_index(drop=True)


def require_columns(frame: pd.DataFrame, path: Path, columns: list[str]) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise GoldError(f"gold file {path} has no column {', '.join(missing)} (it has: {', '.join(map(str, frame.columns))})")
    return frame[columns].copy()


def read_gold_csv(path: Path, spec: GoldFileSpec, schema: RunSchema) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame = require_columns(frame, path, spec.columns)
    for column in spec.columns:
        frame[column] = frame[column].astype(object).str.strip()
    for column, separator in spec.list_columns.items():
        frame[column] = [[item.strip() for item in text.split(separator) if item.strip()] for text in frame[column]]
    for column in spec.int_columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() | (numbers != numbers.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise GoldError(f"gold file {path} line {row + 2}: column {column} must be an integer, "
                            f"got {frame[column].iloc[row]!r}")
        frame[column] = numbers.astype("int64")
    return frame


def read_gold_json(path: Path, spec: GoldFileSpec, schema: RunSchema) -> pd.DataFrame:
    with path.open(encoding="utf-8-sig") as handle:
        try:
            records = json.load(handle)
        except json.JSONDecodeError as error:
            raise GoldError(f"gold file {path} line {error.lineno}: invalid JSON ({error.msg})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise GoldError(f"gold file {path} must hold a JSON list of objects")
    frame = require_columns(pd.DataFrame.from_records(records, columns=None), path, spec.columns) if records \
        else pd.DataFrame({c: pd.Series(dtype=object) for c in spec.columns})
    for column in spec.str_columns:
        frame[column] = frame[column].map(str).astype(object)
    return frame


def read_gold_lines(path: Path, spec: GoldFileSpec, schema: RunSchema) -> pd.DataFrame:
    text = path.read_text(encoding="utf-8-sig")
    values = [line.strip() for line in text.splitlines() if line.strip()]
    return pd.DataFrame({spec.columns[0]: pd.Series(values, dtype=object)})


def read_gold_masks(path: Path, spec: GoldFileSpec, schema: RunSchema) -> pd.DataFrame:
    import tifffile

    pattern = re.compile(spec.name_pattern)
    rows = []
    for file in sorted(path.iterdir()):
        if file.name.startswith("."):
            continue
        match = pattern.fullmatch(file.name)
        if match is None:
            raise GoldError(f"gold file {file} is not named IMG_{{ENC}}_{{IMG}}_mask_{{ANN}}.tiff")
        try:
            pixels = np.squeeze(tifffile.imread(file))
        # tifffile raises many exception types on a broken file; all mean "unreadable".
        except Exception as error:
            raise GoldError(f"gold file {file} is not a readable TIFF ({type(error).__name__}: {error})") from None
        if pixels.ndim != 2:
            raise GoldError(f"gold file {file} is not a single-channel mask (shape {pixels.shape})")
        rows.append({**match.groupdict(), "mask": pixels != 0})
    if not rows:
        raise GoldError(f"gold folder {path} holds no masks")
    return pd.DataFrame(rows, columns=spec.columns)


def read_gold_as_run(path: Path, spec: GoldFileSpec, schema: RunSchema) -> pd.DataFrame:
    """A gold file written in the run's own format (MAGIC closed VQA), parsed by the run parser."""
    from include.campaign.validation.parse_json import parse_json_run
    from include.campaign.validation.text import decode_text

    findings, warnings = Findings(), Findings()
    try:
        text = decode_text(path.read_bytes(), path.name, findings)
        frame = parse_json_run(text, path.name, schema, findings, warnings)
    except StopValidation:
        frame = None
    if findings:
        first = next(iter(findings))
        example = first.examples[0] if first.examples else None
        where = f" line {example.line}" if example and example.line else ""
        raise GoldError(f"gold file {path}{where}: {example.message if example else first.description}")
    return frame[spec.columns]
