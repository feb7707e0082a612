"""Loading the organizers' gold folder of a task into ``dict[str, DataFrame]``.

The layout per format is written in the schema's ``gold`` section and in
``docs/format-contract.md``. Gold files are staged by organizers, not participants, but a broken
one still gets a clear message: :class:`GoldError` names the file and what is wrong.

A scoring pass validates every run of a task against the same gold, so loaded gold is kept in a
small in-process cache keyed by the folder and each gold file's size and modification time (a
changed file is read again). Callers get shallow copies: pandas copy-on-write keeps the cached
frames intact when a caller changes its copy.
"""
from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from include.campaign.validation.findings import Findings, StopValidation
from include.campaign.validation.schema import GoldFileSpec, RunSchema, run_schema
from include.campaign.validation.speed import paused_gc

CACHE_SIZE = 4
_cache: OrderedDict[tuple, "GoldEntry"] = OrderedDict()
_cache_lock = threading.Lock()


class GoldError(Exception):
    """The gold folder of a task is missing a file or holds a malformed one."""


@dataclass
class GoldEntry:
    """The gold tables of one folder, with the id indexes built from them (kept with the cache
    so that their hash tables are built once per gold, not once per run)."""

    tables: dict[str, pd.DataFrame]
    indexes: dict[tuple[str, str], pd.Index] = field(default_factory=dict)

    def index(self, key: str, column: str) -> pd.Index:
        """The distinct values of one gold column as an Index (ids are strings)."""
        if (key, column) not in self.indexes:
            self.indexes[(key, column)] = pd.Index(self.tables[key][column].dropna().unique(), dtype=object)
        return self.indexes[(key, column)]

    def copies(self) -> dict[str, pd.DataFrame]:
        return {name: table.copy(deep=False) for name, table in self.tables.items()}


def load_gold(format_name: str, gold_dir) -> dict[str, pd.DataFrame]:
    """Every gold table of ``format_name`` read from ``gold_dir``, keyed as the contract says."""
    return gold_entry(format_name, gold_dir).copies()


def gold_entry(format_name: str, gold_dir) -> GoldEntry:
    """The (cached) gold of ``format_name`` in ``gold_dir``; ``GoldError`` when it is broken."""
    schema = run_schema(format_name)
    folder = Path(gold_dir)
    if not folder.is_dir():
        raise GoldError(f"gold folder {folder} does not exist or is not a folder")
    key = (format_name, str(folder.resolve()), fingerprint(folder, schema))
    with _cache_lock:
        entry = _cache.get(key)
    if entry is None:
        with paused_gc():  # long-lived rows: build them without collections (see speed.py)
            entry = GoldEntry({spec.key: load_gold_file(folder, spec, schema) for spec in schema.gold.files
                               if not (spec.needed_by and not (folder / spec.path_name).exists())})
        with _cache_lock:
            _cache[key] = entry
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return entry


def required_gold_files(format_name: str, metrics=None) -> list[GoldFileSpec]:
    """The gold files a task of ``format_name`` must stage: every file that is not optional, and a
    file only some metrics need (``needed_by``) when one of them is among ``metrics`` (all of them
    when ``metrics`` is None)."""
    wanted = None if metrics is None else set(metrics)
    return [spec for spec in run_schema(format_name).gold.files
            if not spec.optional and (not spec.needed_by or wanted is None or wanted & set(spec.needed_by))]


def missing_gold_files(format_name: str, present, metrics=None) -> list[tuple[str, str]]:
    """(file, what to stage) for each required gold file absent from ``present`` (paths relative to
    the gold folder; a folder counts as present when a file lies under it)."""
    names = set(present)
    folders = {name.split("/", 1)[0] for name in names if "/" in name}
    missing = []
    for spec in required_gold_files(format_name, metrics):
        found = spec.path_name in folders if spec.folder else spec.path_name in names
        if not found:
            why = f" (needed by {', '.join(sorted(set(spec.needed_by) & set(metrics or spec.needed_by)))})" if spec.needed_by else ""
            shape = "a folder of files" if spec.folder else f"{spec.kind} with {', '.join(spec.columns)}"
            missing.append((spec.path_name, f"stage {spec.path_name}: {shape}{why}"))
    return missing


def fingerprint(folder: Path, schema: RunSchema) -> tuple:
    """Size and modification time of every gold file (every file of a gold sub-folder)."""
    marks = []
    for spec in schema.gold.files:
        path = folder / spec.path_name
        files = sorted(path.iterdir()) if path.is_dir() else [path]
        for file in files:
            try:
                status = file.stat()
                marks.append((file.name, status.st_size, status.st_mtime_ns))
            except OSError:
                marks.append((file.name, None, None))
    return tuple(marks)


def load_gold_file(folder: Path, spec: GoldFileSpec, schema: RunSchema) -> pd.DataFrame:
    path = folder / spec.path_name
    if not path.exists() and spec.optional:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in spec.columns})
    if not path.exists():
        raise GoldError(f"gold file {path} is missing ({schema.format} needs {spec.path_name}: {', '.join(spec.columns)})")
    loaders = {"csv": read_gold_csv, "json-list": read_gold_json, "json-mapping": read_gold_json_mapping, "lines": read_gold_lines,
               "mask-folder": read_gold_masks, "image-folder": read_gold_images, "run-format": read_gold_as_run}
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
    with paused_gc():
        for column in spec.columns:
            frame[column] = pd.Series([value.strip() for value in frame[column]], dtype=object)
        for column, separator in spec.list_columns.items():
            frame[column] = pd.Series([split_list(text, separator) for text in frame[column]], dtype=object)
    for column in spec.int_columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() | (numbers != numbers.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise GoldError(f"gold file {path} line {row + 2}: column {column} must be an integer, "
                            f"got {frame[column].iloc[row]!r}")
        frame[column] = numbers.astype("int64")
    return frame


def split_list(text: str, separator: str) -> list[str]:
    if not text:
        return []
    items = text.split(separator)
    if " " in text or "" in items:
        items = [item.strip() for item in items if item.strip()]
    return items


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


def read_gold_json_mapping(path: Path, spec: GoldFileSpec, schema: RunSchema) -> pd.DataFrame:
    """A JSON object of lists, ``{"key": ["value", ...], ...}``: one row per (key, value), both strings,
    in the file's order (the columns are the spec's two)."""
    with path.open(encoding="utf-8-sig") as handle:
        try:
            mapping = json.load(handle)
        except json.JSONDecodeError as error:
            raise GoldError(f"gold file {path} line {error.lineno}: invalid JSON ({error.msg})") from None
    if not isinstance(mapping, dict) or not all(isinstance(v, list) for v in mapping.values()):
        raise GoldError(f"gold file {path} must hold a JSON object whose values are lists")
    key_column = spec.columns[0]
    if key_column in spec.int_columns:
        bad = [key for key in mapping if not key.strip().isdigit()]
        if bad:
            raise GoldError(f"gold file {path}: key {bad[0]!r} must be a whole number ({key_column})")
    rows = [(key.strip(), str(value)) for key, values in mapping.items() for value in values]
    frame = pd.DataFrame(rows, columns=spec.columns[:2]).astype(object)
    if key_column in spec.int_columns:
        frame[key_column] = frame[key_column].astype("int64")
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


IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # PNG, JPEG


def read_gold_images(path: Path, spec: GoldFileSpec, schema: RunSchema) -> pd.DataFrame:
    """A folder of reference images (the real images FID compares with): one row per image, its name.

    Only names and signatures are checked here; the metric that needs the pixels decodes them."""
    pattern = re.compile(spec.name_pattern or r".+")
    rows = []
    for file in sorted(path.iterdir()):
        if file.name.startswith("."):
            continue
        if not pattern.fullmatch(file.name):
            raise GoldError(f"gold file {file} is not named as {spec.path_name}/ requires ({spec.name_pattern})")
        with open(file, "rb") as handle:
            head = handle.read(8)
        if not head.startswith(IMAGE_SIGNATURES):
            raise GoldError(f"gold file {file} is not a PNG or JPEG image")
        rows.append({spec.columns[0]: file.name})
    if not rows:
        raise GoldError(f"gold folder {path} holds no images")
    return pd.DataFrame(rows, columns=spec.columns[:1])


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
