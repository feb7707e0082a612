"""The per-item table as CSV text: the bytes ``DataFrame.to_csv(lineterminator="\\n")`` writes, in a
fraction of its time for the tables the metrics make.

The bytes must not change: their sha256 is kept in the evaluation records (``per_item_sha256``). With
its defaults, pandas writes a float64 value as ``numpy.ndarray.astype(str)`` does, which is the shortest
text that reads back the same, as Python's ``repr`` (NaN: an empty field), an integer or bool value as
``str``, and gives each row to :mod:`csv`, which quotes a field only for a comma, a double quote or a
line break. A table of float64, integer and bool columns whose item ids are strings with none of these
gets its rows joined here; any other table is written by pandas.
"""
from __future__ import annotations

import csv
import io

import numpy as np

# Characters that make csv quote a field with pandas' options ("\r" too in some Python versions, not 3.11).
_QUOTED = (",", '"', "\n", "\r")


def table_csv(table) -> str:
    """``table.to_csv(lineterminator="\\n")``, the rows joined here when that gives the same text."""
    fields = _plain_fields(table)
    if fields is None:
        return table.to_csv(lineterminator="\n")
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow([table.index.name, *table.columns])
    rows = "\n".join(map(",".join, zip(*fields)))
    return header.getvalue() + (rows + "\n" if rows else "")


def _plain_fields(table) -> list[list[str]] | None:
    """The item ids and each column's values as the fields csv would write unquoted, or None when a
    column's type or an item id or column name is one this module does not write like pandas."""
    import pandas as pd

    index = table.index
    if isinstance(index, pd.MultiIndex) or index.hasnans or index.inferred_type != "string":
        return None
    if not isinstance(index.name, str) or not all(isinstance(name, str) for name in table.columns):
        return None
    ids = index.tolist()
    joined = "".join(ids)
    if any(character in joined for character in _QUOTED):
        return None
    columns = []
    for _, column in table.items():
        values = _column_fields(column)
        if values is None:
            return None
        columns.append(values)
    return [ids, *columns]


def _column_fields(column) -> list[str] | None:
    """A float64, integer or bool column's values as pandas writes them, or None for any other type."""
    dtype = column.dtype
    if not isinstance(dtype, np.dtype):
        return None
    values = column.to_numpy()
    if dtype.kind in "iub":
        return list(map(str, values.tolist()))
    if dtype != np.float64:
        return None
    return _float_fields(values)


def _float_fields(values: np.ndarray) -> list[str]:
    """``repr`` of each value, NaN as an empty field; each distinct bit pattern formatted once (per-item
    scores repeat: 0, 1 and a few fractions), so -0.0 stays apart from 0.0."""
    bits, positions = np.unique(values.view(np.int64), return_inverse=True)
    distinct = bits.view(np.float64)
    texts = np.array(list(map(repr, distinct.tolist())), dtype=object)
    texts[np.isnan(distinct)] = ""
    return texts[positions].tolist()
