"""per_item_csv writes the bytes pandas' ``to_csv`` wrote before rows were joined by hand (item_csv).

The file's sha256 is kept in the evaluation records, so every input, the nasty ones included (NaN,
-0.0, inf, subnormal and huge floats, int and bool columns, item ids that need quoting, duplicate
and missing ids, mixed id types), must give the same text as the reference below: per_item_csv as it
was, writing its table with ``DataFrame.to_csv``.
"""
from __future__ import annotations

import csv
import io
import random

import numpy as np
import pandas as pd

from include.campaign.evaluation import item_csv, per_item_csv
from include.metrics.result import MetricResult

CASES = 600
NASTY_FLOATS = [np.nan, -0.0, 0.0, 1.0, -1.0, 0.5, 0.1, 1 / 3, 2 / 3, np.inf, -np.inf, 1e-300, 5e-324, 2.2250738585072014e-308,
                1e16, 1e15, 9999999999999998.0, 1.7976931348623157e308, 1e-4, 1e-5, 9.999999999999999e-05, 123456789.125, 1e22]
NASTY_IDS = ["a,b", 'say "hi"', "two\nlines", "cr\rhere", " leading", "trailing ", "\ttab", "", "nan", "NaN", "None", "é-ü", "日本",
             "0", "00", "1.0", "-1", "a;b", "a'b", "x y", "ID/family", "Z", "a", "A"]


def reference_per_item_csv(results) -> str:
    """per_item_csv before item_csv, kept as the reference of its bytes."""
    table = _reference_table(results)
    return "item\n" if table is None else table.to_csv(lineterminator="\n")


def _reference_table(results) -> pd.DataFrame | None:
    """The sorted table the reference writes (None: no metric has per-item scores)."""
    columns = {name: result.per_item for name, result in results.items() if result.per_item is not None}
    for name, result in results.items():
        components = getattr(result, "components", None)
        for component in ([] if components is None else components.columns):
            columns[f"{name}:{component}"] = components[component]
    if not columns:
        return None
    table = pd.concat({name: _reference_one_value_per_item(series) for name, series in columns.items()}, axis=1)
    table.index = table.index.astype(str)
    table.index.name = "item"
    return table.sort_index()


def _reference_one_value_per_item(series):
    index = series.index
    if index.is_unique and not index.hasnans:
        return series
    return series.groupby(level=0).first()


def random_float(rng: random.Random) -> float:
    kind = rng.random()
    if kind < 0.3:
        return rng.choice(NASTY_FLOATS)
    if kind < 0.5:  # any bit pattern: subnormals, huge exponents, NaN payloads
        return float(np.array([rng.getrandbits(64)], dtype=np.uint64).view(np.float64)[0])
    if kind < 0.7:
        return rng.randint(0, 12) / rng.randint(1, 12)
    if kind < 0.8:
        return float(rng.randint(-10**6, 10**6))
    return rng.random()


def random_values(rng: random.Random, size: int, kind: str):
    if kind == "float64":
        return np.array([random_float(rng) for _ in range(size)], dtype=np.float64)
    if kind == "float32":
        return np.array([rng.random() for _ in range(size)], dtype=np.float32)
    if kind == "int64":
        return np.array([rng.choice([0, 1, -1, 2**62, -(2**63), rng.randint(-10**9, 10**9)]) for _ in range(size)], dtype=np.int64)
    if kind == "bool":
        return np.array([rng.random() < 0.5 for _ in range(size)], dtype=bool)
    if kind == "Float64":
        return pd.array([None if rng.random() < 0.2 else rng.random() for _ in range(size)], dtype="Float64")
    return np.array([rng.choice([None, np.nan, "text", 'q"uote', 1, 2.5, True]) for _ in range(size)], dtype=object)


def random_ids(rng: random.Random, size: int, kind: str) -> list:
    if kind == "plain":
        return rng.sample([f"ImageCLEF_test_{i:05d}" for i in range(size * 3)], size)
    if kind == "nasty":
        return rng.sample(NASTY_IDS + [f"id {i}" for i in range(size)], size)
    if kind == "odd":  # no character that needs quoting: spaces, tabs, empty, "nan", unicode
        return rng.sample([i for i in NASTY_IDS if not any(c in i for c in ',"\r\n')] + [f" id {i} " for i in range(size)], size)
    if kind == "one_quoted":  # one id csv quotes among plain ones
        return [rng.choice(["a,b", 'say "hi"', "two\nlines", "cr\rhere"])] + [f"q{i}" for i in range(size - 1)]
    if kind == "int":
        return rng.sample(range(-size, size * 3), size)
    if kind == "mixed":  # 1 and "1" become one id twice
        return [rng.choice([rng.randint(0, size), str(rng.randint(0, size)), f"m{rng.randint(0, size)}"]) for _ in range(size)]
    if kind == "with_nan":
        return [np.nan if rng.random() < 0.1 else f"n{i}" for i in range(size)]
    return [f"d{rng.randint(0, size // 2)}" for _ in range(size)]  # duplicates


def random_series(rng: random.Random, pool: list, value_kind: str) -> pd.Series:
    ids = rng.sample(pool, rng.randint(0, len(pool))) if rng.random() < 0.4 else list(pool)
    return pd.Series(random_values(rng, len(ids), value_kind), index=pd.Index(ids, dtype=object if rng.random() < 0.5 else None))


def random_results(rng: random.Random) -> dict[str, MetricResult]:
    """Metric results as the metrics make them, mostly (float64 scores of str ids), often not."""
    id_kind = rng.choice(["plain"] * 4 + ["nasty", "odd", "one_quoted", "int", "mixed", "with_nan", "duplicates"])
    pool = random_ids(rng, rng.randint(1, 60), id_kind)
    value_kinds = ["float64"] * 6 + ["int64", "bool", "float32", "Float64", "object"]
    results = {}
    for number in range(rng.randint(1, 4)):
        per_item = random_series(rng, pool, rng.choice(value_kinds)) if rng.random() < 0.9 else None
        components = None
        if rng.random() < 0.25:  # a corpus-level metric's additive components
            ids = list(pool) if per_item is None else list(per_item.index)
            components = pd.DataFrame({name: random_values(rng, len(ids), rng.choice(["float64", "float64", "int64"]))
                                       for name in ("numerator", "denominator")}, index=pd.Index(ids, dtype=object))
        name = rng.choice(["concept_f1", "gans_kappa", "metric,with comma", 'metric "quoted"'] if number == 0 else ["m"]) + f"_{number}"
        results[name] = MetricResult(value=0.5, per_item=per_item, components=components)
    return results


def test_random_results_give_the_reference_bytes():
    rng = random.Random(20250601)
    joined = 0
    for case in range(CASES):
        results = random_results(rng)
        expected = reference_per_item_csv(results)
        assert per_item_csv(results) == expected, f"case {case}"
        table = _reference_table(results)
        joined += table is not None and item_csv._plain_fields(table) is not None
    assert joined > CASES // 4  # the hand-joined rows, not only pandas, were compared


def test_metric_shaped_results_take_the_joined_rows():
    """Two float64 columns of str ids with missing items (concept_f1, concept_f1_manual) are joined by hand."""
    rng = np.random.default_rng(5)
    ids = pd.Index([f"ImageCLEFmedical_Caption_2025_test_{i:06d}" for i in rng.permutation(500)], name="ID").astype(str)
    manual = rng.random(500) < 0.2
    results = {"concept_f1": MetricResult(0.5, pd.Series(rng.integers(0, 4, 500) / 3, index=ids)),
               "concept_f1_manual": MetricResult(0.5, pd.Series(rng.random(int(manual.sum())), index=ids[manual]))}
    assert item_csv._plain_fields(_reference_table(results)) is not None
    assert per_item_csv(results) == reference_per_item_csv(results)


def test_every_float64_bit_pattern_is_written_as_pandas_writes_it():
    values = np.random.default_rng(11).integers(0, 2**64, 50_000, dtype=np.uint64).view(np.float64)
    values = np.concatenate([values, np.array(NASTY_FLOATS)])
    table = pd.DataFrame({"score": values, "negated": -values},
                         index=pd.Index([f"i{n:06d}" for n in range(len(values))], name="item"))
    assert item_csv._plain_fields(table) is not None
    assert item_csv.table_csv(table) == table.to_csv(lineterminator="\n")


def test_csv_quotes_only_the_characters_that_send_a_table_to_pandas():
    """With pandas' options, csv writes every other character as it is, so joined ids need no quoting."""
    characters = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and chr(c) not in item_csv._QUOTED]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL, quotechar='"', doublequote=True).writerows(
        (f"a{c}b", "1.0") for c in characters)
    assert buffer.getvalue() == "".join(f"a{c}b,1.0\n" for c in characters)


def test_no_per_item_scores_give_the_header_alone():
    assert per_item_csv({"concept_f1": MetricResult.missing("no gold")}) == "item\n"
