"""A typed view of the run-format schema files in ``include/schemas/``.

The YAML files are the source of truth; these models check them (unknown keys are refused, so a
typo in a schema fails its test instead of silently switching a rule off) and give the validator
attribute access.
"""
from __future__ import annotations

import builtins
import re
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from include.schemas import load_schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GoldColumn(_Strict):
    """One column of one gold table: ``key`` is the gold dict key."""

    key: str
    column: str


class ContainerSpec(_Strict):
    kind: Literal["zip", "file"]
    member_pattern: str
    member_hint: str
    min_members: int = 1
    max_members: int | None = 1
    zipped_allowed: bool = False


class WideSpec(_Strict):
    """JSON objects with one key per item (MAGIC closed VQA), turned into one row per item."""

    key_field: str
    item_key_pattern: str
    item_key_hint: str
    item_column: str
    value_column: str


class FileSpec(_Strict):
    type: Literal["csv", "json-list", "jsonl", "png", "tiff"]
    encoding: Literal["utf-8"] = "utf-8"
    delimiter: str = ","
    header: Literal["optional", "forbidden", "required"] = "forbidden"
    header_first_field_contains: str | None = None
    columns: list[str] = []
    last_field_optional: bool = False  # a line may stop after the first fields (no trailing delimiter)
    shape: Literal["records", "wide"] = "records"
    wide: WideSpec | None = None
    name_pattern: str | None = None
    name_hint: str | None = None
    max_pixels: int | None = None
    binary: bool = False
    mask_on_value: int | None = None  # the value of a mask's marked pixels (0 is the background)
    size_from_gold: GoldColumn | None = None


class ListSpec(_Strict):
    separator: str
    item_label: str
    item_pattern: str | None = None
    item_hint: str | None = None
    max_items: int | None = None
    unique_items: bool = False
    compare_upper: bool = False


class FieldSpec(_Strict):
    name: str
    label: str
    # annotations below say builtins.list because this model has a field named ``list``
    json_types: builtins.list[Literal["string", "integer", "number", "boolean"]] | None = None
    coerce: Literal["str"] | None = None
    canonical: Literal["int"] | None = None
    non_empty: bool = False
    max_length: int | None = None
    pattern: str | None = None
    pattern_hint: str | None = None
    allowed: builtins.list[str] | None = None
    allowed_from_gold: GoldColumn | None = None
    min: int | None = None
    max: int | None = None
    list: ListSpec | None = None


class PairsSpec(_Strict):
    key: str
    columns: list[str]
    label: str


class IdSpec(_Strict):
    column: str
    label: str
    expected_from: GoldColumn
    coverage: Literal["every", "optional", "every-or-one-group"]
    group_column: str | None = None
    unique: bool = True
    count_per_id: int | None = None
    pairs_from: PairsSpec | None = None


class UniqueTogether(_Strict):
    columns: list[str]
    description: str


class SingleValue(_Strict):
    column: str
    description: str


class Condition(_Strict):
    column: str
    equals: str


class ReferenceSpec(_Strict):
    column: str
    label: str
    description: str
    # "in" is a Python keyword, hence the alias
    in_: GoldColumn
    when: Condition | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _rename_in(cls, data):
        if isinstance(data, dict) and "in" in data:
            data = {**data, "in_": data["in"]}
            del data["in"]
        return data


class CompleteSequence(_Strict):
    """Within each id, ``column`` takes every value from ``first`` to ``last`` (Touché ranks 1-5)."""

    column: str
    first: int
    last: int
    description: str


class MatchesGold(_Strict):
    column: str
    description: str


class GoldFileSpec(_Strict):
    key: str
    kind: Literal["csv", "json-list", "json-mapping", "lines", "mask-folder", "image-folder", "run-format"]
    columns: list[str]
    file: str | None = None
    folder: str | None = None
    header: bool = True
    list_columns: dict[str, str] = {}
    int_columns: list[str] = []
    str_columns: list[str] = []
    name_pattern: str | None = None
    public: bool = False  # a test input participants receive too (the release does not treat it as secret)
    optional: bool = False  # may be absent from the gold folder: it then reads as an empty table
    # needed only by these metrics: required when one of them is among the task's metrics, else it
    # may be absent (the metric then reports "not computed" and no other metric reads it)
    needed_by: list[str] = []

    @property
    def path_name(self) -> str:
        return self.file or self.folder or self.key


class GoldSpec(_Strict):
    description: str
    files: list[GoldFileSpec]


class FormatOption(_Strict):
    """A setting a campaign's task may change (``format_options`` in the campaign file): ``set`` names
    the attribute of ``field`` (or of its list) that takes the task's value."""

    field: str
    set: Literal["item_pattern", "item_hint", "item_label", "pattern", "pattern_hint", "label"]
    description: str


LIST_SETTINGS = ("item_pattern", "item_hint", "item_label")
PATTERN_SETTINGS = ("item_pattern", "pattern")


class RunSchema(_Strict):
    format: str
    task: str
    title: str
    container: ContainerSpec
    file: FileSpec
    fields: list[FieldSpec]
    ids: IdSpec
    unique_together: list[UniqueTogether] = []
    single_value: list[SingleValue] = []
    references: list[ReferenceSpec] = []
    matches_gold: list[MatchesGold] = []
    complete_sequence: CompleteSequence | None = None
    canonical_columns: list[str]
    gold: GoldSpec
    options: dict[str, FormatOption] = {}

    @model_validator(mode="after")
    def _options_name_fields(self):
        for name, option in self.options.items():
            spec = next((f for f in self.fields if f.name == option.field), None)
            if spec is None or (option.set in LIST_SETTINGS and spec.list is None):
                raise ValueError(f"option {name}: no {'list ' if option.set in LIST_SETTINGS else ''}field {option.field}")
        return self

    @model_validator(mode="after")
    def _patterns_compile(self):
        patterns = [self.container.member_pattern, self.file.name_pattern]
        patterns += [f.pattern for f in self.fields] + [f.list.item_pattern for f in self.fields if f.list]
        if self.file.wide:
            patterns.append(self.file.wide.item_key_pattern)
        for pattern in filter(None, patterns):
            re.compile(pattern)
        return self

    def field(self, name: str) -> FieldSpec:
        return next(spec for spec in self.fields if spec.name == name)


@lru_cache(maxsize=None)
def run_schema(format_name: str) -> RunSchema:
    """The checked schema of ``format_name``; ``KeyError`` names the known formats."""
    return RunSchema.model_validate(load_schema(format_name))


def format_option_problems(format_name: str, options: dict) -> list[tuple[str, str]]:
    """(option, what is wrong) for each of a task's ``format_options`` the format cannot take."""
    schema = run_schema(format_name)
    problems = []
    for name, value in options.items():
        spec = schema.options.get(name)
        if spec is None:
            known = ", ".join(sorted(schema.options)) or "none"
            problems.append((str(name), f"run format {format_name!r} has no option {name!r} (its options: {known})"))
        elif not isinstance(value, str) or not value.strip():
            problems.append((name, f"must be a non-empty text ({spec.description})"))
        elif spec.set in PATTERN_SETTINGS:
            try:
                re.compile(value)
            except re.error as error:
                problems.append((name, f"is not a regular expression: {error}"))
    return problems


def task_schema(format_name: str, task_id: str | None = None, options: dict | None = None) -> RunSchema:
    """The format's schema as one task of a campaign uses it: its ``format_options`` applied and the
    campaign's task id in place of the format's ImageCLEF task. ``ValueError`` for a bad option."""
    schema = run_schema(format_name)
    if not options and not task_id:
        return schema
    problems = format_option_problems(format_name, options or {})
    if problems:
        raise ValueError("; ".join(f"format_options.{name}: {message}" for name, message in problems))
    fields = list(schema.fields)
    for name, value in (options or {}).items():
        spec = schema.options[name]
        position = next(i for i, f in enumerate(fields) if f.name == spec.field)
        target = fields[position]
        if spec.set in LIST_SETTINGS:
            target = target.model_copy(update={"list": target.list.model_copy(update={spec.set: value})})
        else:
            target = target.model_copy(update={spec.set: value})
        fields[position] = target
    return schema.model_copy(update={"fields": fields, "task": task_id or schema.task})
