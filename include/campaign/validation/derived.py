"""Per-row columns computed with vectorised pandas and plain loops so the suite can check them.

A list field (the CUIs of a concept-detection line) is one text per row; the rules are about its
items. Exploding 100,000 lines into a row per item and checking those in Great Expectations
takes seconds, so the item rules are reduced here to one column per rule and row (the item count,
the first invalid item, the first repeated item) that the suite then checks in one pass.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from include.campaign.validation.schema import FieldSpec
from include.campaign.validation.speed import paused_gc


def count_column(field: FieldSpec) -> str:
    return f"{field.name}__count"


def invalid_item_column(field: FieldSpec) -> str:
    return f"{field.name}__invalid_item"


def repeated_item_column(field: FieldSpec) -> str:
    return f"{field.name}__repeated_item"


def first_repeated(items: list[str], upper: bool) -> str | None:
    seen: set[str] = set()
    for item in items:
        key = item.upper() if upper else item
        if key in seen:
            return item
        seen.add(key)
    return None


def add_list_columns(frame: pd.DataFrame, field: FieldSpec) -> list[list[str] | None]:
    """Add the count, invalid-item and repeated-item columns of ``field``; return the item lists.

    Items are checked once per distinct value rather than once per line: a run of 100,000 lines
    holds a few thousand distinct concepts, so the pattern is matched a few thousand times and
    only lines holding a bad item are searched. Per-line work uses ``map`` over builtins, which
    runs without a Python-level loop.
    """
    spec = field.list
    texts = frame[field.name].tolist()
    with paused_gc():
        lists = split_texts(texts, spec.separator)
        present = [items for items in lists if items]
        distinct = set().union(*present)
        if any(item != item.strip() for item in distinct):
            lists = [None if items is None else strip_items(items) for items in lists]
            present = [items for items in lists if items]
            distinct = set().union(*present)
        sized = [items or () for items in lists] if None in lists else lists  # lists of a CSV are never None
        counts = np.fromiter(map(len, sized), dtype=np.int64, count=len(lists))
        frame[count_column(field)] = counts
        frame[invalid_item_column(field)] = pd.Series(invalid_items(lists, distinct, spec.item_pattern),
                                                      dtype=object, index=frame.index)
        if spec.unique_items:
            ignore_case = spec.compare_upper and any(item != item.upper() for item in distinct)
            frame[repeated_item_column(field)] = pd.Series(repeated_items(lists, sized, counts, ignore_case),
                                                           dtype=object, index=frame.index)
    return lists


def split_texts(texts: list, separator: str) -> list[list[str] | None]:
    if None in texts:
        return [None if text is None else text.split(separator) if text else [] for text in texts]
    return [text.split(separator) if text else [] for text in texts]


def strip_items(items: list[str]) -> list[str]:
    stripped = [item.strip() for item in items]
    return [] if stripped == [""] else stripped


def invalid_items(lists: list, distinct: set[str], item_pattern: str | None) -> list[str | None]:
    """The first invalid item of each line, None for lines whose items all match."""
    invalid: list[str | None] = [None] * len(lists)
    if item_pattern is None:
        return invalid
    pattern = re.compile(item_pattern)
    bad = {item for item in distinct if not pattern.fullmatch(item)}
    if bad:
        for position, items in enumerate(lists):
            if items and not bad.isdisjoint(items):
                invalid[position] = next(item for item in items if item in bad)
    return invalid


def repeated_items(lists: list, sized: list, counts: np.ndarray, ignore_case: bool) -> list[str | None]:
    """The first repeated item of each line (None when none): lines whose set of items is
    smaller than their list are searched item by item (every line with two items or more when
    case must be ignored)."""
    if ignore_case:
        suspects = np.flatnonzero(counts > 1)
    else:
        distinct_counts = np.fromiter(map(len, map(set, sized)), dtype=np.int64, count=len(lists))
        suspects = np.flatnonzero(distinct_counts != counts)
    repeated: list[str | None] = [None] * len(lists)
    for position in suspects:
        repeated[position] = first_repeated(lists[position], ignore_case)
    return repeated
