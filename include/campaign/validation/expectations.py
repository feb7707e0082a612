"""Row-level rules as a Great Expectations suite built from the schema, run with GX Core.

One ephemeral context (pandas data source, whole-dataframe batch) is built per process on first
use and reused: importing ``great_expectations`` costs about 2 s, so it is imported lazily here
and nowhere else. Each expectation carries the rule it enforces in its ``meta``; GX's result
(count and first unexpected rows) is turned into report examples with the row's line or member.

The rules of the id column stay in vectorised pandas (``rules.py``), measured on a 100,000-line
concept run: membership in a large set (GX's ``ExpectColumnValuesToBeInSet`` with the 100,000 test
ids took 20 s, ``Index.get_indexer`` 15 ms), uniqueness (their positions among the test ids, needed
anyway, give duplicates with one ``bincount``), and non-emptiness: GX fingerprints its batch by
hashing every column twice, and the id column, 100,000 distinct strings, made the suite cost
0.31 s instead of 0.06 s. Set-level rules (missing ids) are not about a row and stay there too.
Every other field rule of the schema is an expectation here.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from include.campaign.validation import derived
from include.campaign.validation.findings import Findings, MAX_EXAMPLES, quoted
from include.campaign.validation.locate import Locator
from include.campaign.validation.schema import FieldSpec, RunSchema

# Above this many values, membership is checked with pandas (see the module docstring).
GX_SET_LIMIT = 1000
_lock = threading.Lock()
_batch_definition = None


@dataclass
class RowRule:
    """One expectation and how to word its breaks for a participant."""

    rule: str
    description: str
    expectation: str
    columns: list[str]
    message: Callable[[dict], str]
    options: dict = field(default_factory=dict)

    def build(self, gxe):
        target = {"column_list": self.columns} if len(self.columns) > 1 else {"column": self.columns[0]}
        return getattr(gxe, self.expectation)(**target, **self.options, meta={"rule": self.rule})


def _gold_values(gold: dict[str, pd.DataFrame], key: str, column: str) -> list[str]:
    return sorted(set(gold[key][column].dropna().map(str)))


def field_rules(field: FieldSpec, gold: dict[str, pd.DataFrame]) -> list[RowRule]:
    """The expectations for one field, in the order they are reported."""
    name, label = field.name, field.label
    rules: list[RowRule] = []
    if field.pattern:
        hint = field.pattern_hint or field.pattern
        rules.append(RowRule(f"{name}.pattern", f"{label} ({name}) is {hint}", "ExpectColumnValuesToMatchRegex", [name],
                             lambda e, n=name, l=label, h=hint: f"{l} {quoted(e[n])} is not {h}",
                             {"regex": f"^(?:{field.pattern})$"}))
    elif field.non_empty:
        rules.append(RowRule(f"{name}.empty", f"{label} ({name}) is never empty", "ExpectColumnValueLengthsToBeBetween",
                             [name], lambda e, l=label: f"the {l} is empty", {"min_value": 1}))
    if field.max_length:
        rules.append(RowRule(f"{name}.length", f"{label} ({name}) has at most {field.max_length} characters",
                             "ExpectColumnValueLengthsToBeBetween", [name],
                             lambda e, n=name, l=label, m=field.max_length: f"the {l} has {len(str(e[n]))} characters, at most {m} allowed",
                             {"max_value": field.max_length}))
    allowed = field.allowed or (_gold_values(gold, field.allowed_from_gold.key, field.allowed_from_gold.column)
                                if field.allowed_from_gold else None)
    if allowed is not None and len(allowed) <= GX_SET_LIMIT:
        choices = ", ".join(allowed)
        rules.append(RowRule(f"{name}.allowed", f"{label} ({name}) is one of {choices}", "ExpectColumnValuesToBeInSet",
                             [name], lambda e, n=name, l=label, c=choices: f"{l} {quoted(e[n])} is not one of {c}",
                             {"value_set": allowed}))
    if field.min is not None or field.max is not None:
        bounds = describe_bounds(field.min, field.max)
        rules.append(RowRule(f"{name}.range", f"{label} ({name}) is {bounds}", "ExpectColumnValuesToBeBetween", [name],
                             lambda e, n=name, l=label, b=bounds: f"{l} {e[n]} is outside the range: must be {b}",
                             {"min_value": field.min, "max_value": field.max}))
    if field.list:
        rules.extend(list_rules(field))
    return rules


def describe_bounds(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"from {low} to {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def list_rules(field: FieldSpec) -> list[RowRule]:
    spec, label, item = field.list, field.label, field.list.item_label
    rules = []
    if spec.item_pattern:
        column = derived.invalid_item_column(field)
        hint = spec.item_hint or spec.item_pattern
        rules.append(RowRule(f"{field.name}.item-pattern", f"every {item} is {hint}", "ExpectColumnValuesToBeNull", [column],
                             lambda e, c=column, i=item, h=hint: (f"empty {i} (two {quoted(spec.separator)} in a row, or one at an end)"
                                                                  if e[c] == "" else f"{quoted(e[c])} is not a valid {i}: expected {h}")))
    if spec.max_items:
        column = derived.count_column(field)
        rules.append(RowRule(f"{field.name}.max-items", f"at most {spec.max_items} {item}s per line",
                             "ExpectColumnValuesToBeBetween", [column],
                             lambda e, c=column, i=item, m=spec.max_items: f"{e[c]} {i}s on this line, at most {m} allowed",
                             {"max_value": spec.max_items}))
    if spec.unique_items:
        column = derived.repeated_item_column(field)
        case = " (compared upper-cased)" if spec.compare_upper else ""
        rules.append(RowRule(f"{field.name}.repeated-item", f"no {item} twice on one line{case}", "ExpectColumnValuesToBeNull",
                             [column], lambda e, c=column, i=item: f"repeated {i} {quoted(e[c])} on this line"))
    return rules


def suite_rules(schema: RunSchema, gold: dict[str, pd.DataFrame], columns) -> list[RowRule]:
    """Every row rule the schema defines for a frame with ``columns``."""
    rules = [rule for field in schema.fields if field.name in columns and field.name != schema.ids.column
             for rule in field_rules(field, gold)]
    for together in schema.unique_together:
        cols = together.columns
        rules.append(RowRule(f"{'+'.join(cols)}.unique", together.description, "ExpectCompoundColumnsToBeUnique", cols,
                             lambda e, cs=tuple(cols): "the same " + ", ".join(f"{c} {quoted(e[c])}" for c in cs) + " appears on another line too"))
    return rules


def batch_definition():
    """The process-wide GX whole-dataframe batch definition, built on first use."""
    global _batch_definition
    if _batch_definition is None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        config = DataContextConfig(
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        )
        context = gx.get_context(mode="ephemeral", project_config=config)
        asset = context.data_sources.add_pandas("runs").add_dataframe_asset("run")
        _batch_definition = asset.add_batch_definition_whole_dataframe("whole run")
    return _batch_definition


def run_suite(frame: pd.DataFrame, rules: list[RowRule], locator: Locator, findings: Findings, suite_name: str) -> None:
    """Validate ``frame`` against ``rules`` with GX and record every broken rule.

    A first pass asks GX only whether each expectation holds (BOOLEAN_ONLY, the cheapest result
    format); only the expectations that fail are run again for their count and first rows.
    """
    if not rules or frame.empty:
        return
    needed = sorted({column for rule in rules for column in rule.columns})
    checked = frame[needed].reset_index(drop=True)  # copy-on-write: no data is copied
    failed = [rule for rule, outcome in validate(checked, rules, suite_name, "BOOLEAN_ONLY") if not outcome.success]
    if not failed:
        return
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES,
                     "return_unexpected_index_query": False}
    for rule, outcome in validate(checked, failed, f"{suite_name} details", result_format):
        if not outcome.success:
            record(outcome.result, rule, locator, findings)


def validate(checked: pd.DataFrame, rules: list[RowRule], suite_name: str, result_format) -> list[tuple[RowRule, object]]:
    """(rule, GX expectation result) for every rule; raises when GX itself failed on one."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=suite_name, expectations=[rule.build(gxe) for rule in rules])
    with _lock:
        batch = batch_definition().get_batch(batch_parameters={"dataframe": checked})
        result = batch.validate(suite, result_format=result_format)
    by_rule = {rule.rule: rule for rule in rules}
    outcomes = []
    for outcome in result.results:
        rule = by_rule[outcome.expectation_config.meta["rule"]]
        if outcome.exception_info and outcome.exception_info.get("raised_exception"):
            raise RuntimeError(f"GX could not evaluate {rule.rule}: {outcome.exception_info.get('exception_message')}")
        outcomes.append((rule, outcome))
    return outcomes


def record(result: dict, rule: RowRule, locator: Locator, findings: Findings) -> None:
    """GX's count and first unexpected rows (positions, as the batch has a RangeIndex) to examples."""
    positions = result.get("partial_unexpected_index_list") or []
    values = result.get("partial_unexpected_list") or []
    examples = []
    for position, value in zip(positions, values):
        entry = value if isinstance(value, dict) else {rule.columns[0]: value}
        shown_value = None if len(rule.columns) > 1 else _plain(value)
        examples.append(locator.example(int(position), rule.message(entry), shown_value))
    findings.add_examples(rule.rule, rule.description, int(result.get("unexpected_count") or len(examples)), examples)


def _plain(value: object) -> object:
    """numpy scalars to Python ones, so the report stays JSON-able."""
    return value.item() if hasattr(value, "item") else value
