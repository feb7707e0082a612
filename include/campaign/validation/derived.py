"""Per-row columns computed with vectorised pandas so that the suite can check them.

A list field (the CUIs of a concept-detection line) is one text per row; the rules are about its
items. Exploding 100,000 lines into a row per item and checking those in Great Expectations
takes seconds, so the item rules are reduced here to one column per rule and row (the item count,
the first invalid item, the first repeated item) that the suite then checks in one pass.
"""
from __future__ import annotations

import re

import pandas as pd

from include.campaign.validation.schema import FieldSpec


def count_column(field: FieldSpec) -> str:
    return f"{field.name}__count"


def invalid_item_column(field: FieldSpec) -> str:
    return f"{field.name}__invalid_item"


def repeated_item_column(field: FieldSpec) -> str:
    return f"{field.name}__repeated_item"


def split_items(texts: pd.Series, separator: str) -> list[list[str] | None]:
    """Each text split on ``separator`` with items stripped; an empty text is an empty list."""
    items = []
    for text in texts:
        if text is None:
            items.append(None)
        elif not text:
            items.append([])
        else:
            parts = text.split(separator)
            items.append([part.strip() for part in parts] if " " in text or "\t" in text else parts)
    return items


def first_invalid(items: list[str], pattern: re.Pattern) -> str | None:
    return next((item for item in items if not pattern.fullmatch(item)), None)


def first_repeated(items: list[str], upper: bool) -> str | None:
    seen: set[str] = set()
    for item in items:
        key = item.upper() if upper else item
        if key in seen:
            return item
        seen.add(key)
    return None


def add_list_columns(frame: pd.DataFrame, field: FieldSpec) -> list[list[str] | None]:
    """Add the count, invalid-item and repeated-item columns of ``field``; return the lists."""
    spec = field.list
    lists = split_items(frame[field.name], spec.separator)
    frame[count_column(field)] = pd.Series([None if l is None else len(l) for l in lists], dtype=object)
    invalid: list[str | None] = [None] * len(lists)
    if spec.item_pattern:
        item = spec.item_pattern
        whole_line = f"(?:{item})(?:\\s*{re.escape(spec.separator)}\\s*(?:{item}))*\\s*|"
        line_ok = frame[field.name].astype(object).fillna("").str.fullmatch(whole_line).to_numpy()
        pattern = re.compile(item)
        # Only lines that fail the whole-line pattern are searched item by item.
        for position in (~line_ok).nonzero()[0]:
            if lists[position] is not None:
                invalid[position] = first_invalid(lists[position], pattern)
    frame[invalid_item_column(field)] = pd.Series(invalid, dtype=object)
    if spec.unique_items:
        repeated = [first_repeated(l, spec.compare_upper) if l is not None and len(l) > 1 else None for l in lists]
        frame[repeated_item_column(field)] = pd.Series(repeated, dtype=object)
    return lists
