"""Set-level rules in vectorised pandas: which test ids are covered, unknown, missing.

These compare a run with its gold (every test id exactly once, no unknown id, a language's
subset, images per prompt, masks of the source image's size, a retrieved image exists in the
collection). They are not about one row alone, or check membership in sets of up to hundreds of
thousands of ids where pandas ``isin`` is three orders of magnitude faster than the equivalent
GX expectation (see ``expectations.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from include.campaign.validation.findings import Findings, MAX_EXAMPLES, quoted
from include.campaign.validation.locate import Locator
from include.campaign.validation.schema import RunSchema


def present_ids(frame: pd.DataFrame, column: str) -> pd.Series:
    values = frame[column]
    return values[values.notna() & (values != "")]


@dataclass
class IdMatch:
    """Where each row's id sits in the test ids (-1: unknown or empty) and which ids are covered."""

    positions: np.ndarray
    covered: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame, column: str, expected: pd.Index) -> "IdMatch":
        positions = expected.get_indexer(frame[column])
        covered = np.zeros(len(expected), dtype=bool)
        covered[positions[positions >= 0]] = True
        return cls(positions, covered)


def check_id_values(frame: pd.DataFrame, schema: RunSchema, locator: Locator, findings: Findings) -> None:
    """The id field's own rules (never empty, its pattern), vectorised (see expectations.py)."""
    ids, field = schema.ids, schema.field(schema.ids.column)
    values = frame[ids.column]
    present = values.notna()
    if field.non_empty or field.pattern:
        bad = present & (values == "")
        if field.pattern:
            bad |= present & ~values.astype(object).fillna("").str.fullmatch(field.pattern)
        rows = np.flatnonzero(bad.to_numpy())
        if len(rows):
            hint = field.pattern_hint or field.pattern
            texts = values.to_numpy()
            examples = [locator.example(int(p), f"the {field.label} is empty" if texts[p] == ""
                                        else f"{field.label} {quoted(texts[p])} is not {hint}", texts[p])
                        for p in rows[:MAX_EXAMPLES]]
            rule, description = ((f"{field.name}.pattern", f"{field.label} ({field.name}) is {hint}") if field.pattern
                                 else (f"{field.name}.empty", f"{field.label} ({field.name}) is never empty"))
            findings.add_examples(rule, description, len(rows), examples)


def check_duplicates(frame: pd.DataFrame, schema: RunSchema, match: IdMatch, locator: Locator, findings: Findings) -> None:
    """Every id at most once. Known ids are counted from their positions in the test ids (already
    computed, so no further hashing); unknown ones, usually none, with ``duplicated``."""
    ids = schema.ids
    known_rows = match.positions >= 0
    counts = np.bincount(match.positions[known_rows], minlength=len(match.covered))
    repeated = known_rows.copy()
    repeated[known_rows] = counts[match.positions[known_rows]] > 1
    unknown = frame[ids.column][~known_rows]
    unknown = unknown[unknown.notna() & (unknown != "")]
    if len(unknown):
        repeated[frame.index.get_indexer(unknown.index[unknown.duplicated(keep=False)])] = True
    rows = np.flatnonzero(repeated)
    if not len(rows):
        return
    values = frame[ids.column].to_numpy()
    examples = [locator.example(int(p), f"{ids.label} {quoted(values[p])} appears more than once", values[p])
                for p in rows[:MAX_EXAMPLES]]
    findings.add_examples(f"{ids.column}.unique", f"every {ids.label} appears once", len(rows), examples)


def check_unknown(frame: pd.DataFrame, schema: RunSchema, match: IdMatch, locator: Locator, findings: Findings) -> int:
    ids = schema.ids
    candidates = np.flatnonzero(match.positions < 0)
    if not len(candidates):
        return 0
    values = frame[ids.column].iloc[candidates]
    unknown = values[values.notna() & (values != "")]  # empty ids are reported by their own rule
    if unknown.empty:
        return 0
    positions = frame.index.get_indexer(unknown.index[:MAX_EXAMPLES])
    examples = [locator.example(int(p), f"unknown {ids.label} {quoted(v)}: it is not in the test set", v)
                for p, v in zip(positions, unknown.iloc[:MAX_EXAMPLES])]
    findings.add_examples(f"{ids.column}.known", f"every {ids.label} is one of the test set", len(unknown), examples)
    return int(unknown.nunique())


def report_missing(missing: list[str], label: str, rule: str, description: str, locator: Locator,
                   findings: Findings, extra: str = "") -> None:
    examples = [locator.file_example(f"{label} {quoted(m)} is missing{extra}", m) for m in missing[:MAX_EXAMPLES]]
    findings.add_examples(rule, description, len(missing), examples)


def check_coverage(frame: pd.DataFrame, schema: RunSchema, gold, expected: pd.Index, match: IdMatch,
                   locator: Locator, findings: Findings) -> dict:
    """Record missing ids as the schema's coverage rule says; return the coverage counts."""
    ids = schema.ids
    covered, missing = expected[match.covered], expected[~match.covered]
    counts = {"ids_expected": len(expected), "ids_covered": len(covered), "ids_missing": len(missing), "ids_total": len(expected)}
    if ids.coverage == "every" and len(missing):
        report_missing(list(missing), ids.label, f"{ids.column}.missing", f"every {ids.label} of the test set is present",
                       locator, findings)
    elif ids.coverage == "every-or-one-group" and len(missing):
        counts.update(check_group_coverage(frame, schema, gold, covered, locator, findings))
    return counts


def check_group_coverage(frame, schema: RunSchema, gold, covered: pd.Index, locator: Locator, findings: Findings) -> dict:
    """A run covers the whole test set or exactly one group's (language's) part of it."""
    ids = schema.ids
    table = gold[ids.expected_from.key]
    groups = table.groupby(ids.group_column)[ids.expected_from.column].apply(lambda s: pd.Index(s.map(str).unique()))
    run_groups = table[table[ids.expected_from.column].map(str).isin(covered)][ids.group_column].value_counts()
    description = f"the run covers the whole test set or exactly one {ids.group_column}'s part of it"
    if len(run_groups) == 1:
        group = run_groups.index[0]
        missing = groups[group].difference(covered)
        if missing.empty:
            return {"ids_expected": len(groups[group]), "subset": {ids.group_column: str(group)}}
        report_missing(list(missing), ids.label, f"{ids.column}.coverage", description, locator, findings,
                       f" (the run answers only {ids.group_column} {quoted(group)} questions, so all of them are needed)")
        return {}
    all_missing = [m for group in run_groups.index for m in groups[group].difference(covered)]
    all_missing += [m for group in groups.index if group not in run_groups.index for m in groups[group]]
    summary = locator.file_example(
        f"the run covers {len(covered)} of {sum(len(g) for g in groups)} test {ids.label}s across "
        f"{len(run_groups)} {ids.group_column}s ({', '.join(map(str, run_groups.index[:13]))}): submit the whole test "
        f"set or exactly one {ids.group_column}'s part")
    examples = [locator.file_example(f"{ids.label} {quoted(m)} is missing", m) for m in all_missing[:MAX_EXAMPLES - 1]]
    findings.add_examples(f"{ids.column}.coverage", description, len(all_missing),
                          ([summary] if len(run_groups) else []) + examples)
    return {}


def check_count_per_id(frame: pd.DataFrame, schema: RunSchema, expected: pd.Index, locator: Locator, findings: Findings) -> None:
    ids = schema.ids
    counts = present_ids(frame, ids.column).value_counts()
    wrong = counts[(counts != ids.count_per_id) & counts.index.isin(expected)]
    examples = [locator.file_example(f"{ids.label} {quoted(i)} has {n} entries, exactly {ids.count_per_id} are required", i)
                for i, n in wrong.iloc[:MAX_EXAMPLES].items()]
    if len(wrong):
        findings.add_examples(f"{ids.column}.count", f"exactly {ids.count_per_id} entries per {ids.label}",
                              len(wrong), examples)


def check_pairs(frame: pd.DataFrame, schema: RunSchema, gold, expected: pd.Index, locator: Locator, findings: Findings) -> None:
    """Every (id, item) pair of the gold for the ids the run covers, and no other pair."""
    spec = schema.ids.pairs_from
    id_column, item_column = spec.columns
    gold_pairs = pd.MultiIndex.from_frame(gold[spec.key][spec.columns].astype(str))
    rows = frame[frame[id_column].isin(expected) & frame[item_column].notna()]
    run_pairs = pd.MultiIndex.from_frame(rows[spec.columns].astype(str))
    unknown = ~run_pairs.isin(gold_pairs)
    if unknown.any():
        positions = frame.index.get_indexer(rows.index[unknown][:MAX_EXAMPLES])
        examples = [locator.example(int(p), f"{spec.label} {quoted(pair[1])} is not asked for {id_column} {quoted(pair[0])}")
                    for p, pair in zip(positions, run_pairs[unknown][:MAX_EXAMPLES])]
        findings.add_examples(f"{item_column}.known", f"every {spec.label} is one the test set asks", int(unknown.sum()), examples)
    covered_ids = set(rows[id_column])
    needed = gold_pairs[gold_pairs.get_level_values(0).isin(covered_ids)]
    missing = needed[~needed.isin(run_pairs)]
    if len(missing):
        examples = [locator.file_example(f"{id_column} {quoted(a)} has no answer for {spec.label} {quoted(b)}")
                    for a, b in missing[:MAX_EXAMPLES]]
        findings.add_examples(f"{item_column}.missing", f"every {spec.label} of the test set is answered", len(missing), examples)


def check_references(frame: pd.DataFrame, schema: RunSchema, gold, locator: Locator, findings: Findings) -> None:
    for reference in schema.references:
        known = pd.Index(gold[reference.in_.key][reference.in_.column].map(str))
        applies = frame[reference.column].notna()
        if reference.when:
            applies &= frame[reference.when.column] == reference.when.equals
        bad = frame[applies & ~frame[reference.column].isin(known)]
        if bad.empty:
            continue
        positions = frame.index.get_indexer(bad.index[:MAX_EXAMPLES])
        examples = [locator.example(int(p), f"{reference.label} {quoted(v)} is not in the collection", v)
                    for p, v in zip(positions, bad[reference.column].iloc[:MAX_EXAMPLES])]
        findings.add_examples(f"{reference.column}.exists", reference.description, len(bad), examples)


def check_single_values(frame: pd.DataFrame, schema: RunSchema, locator: Locator, findings: Findings) -> None:
    for single in schema.single_value:
        counts = frame[single.column].dropna().value_counts()
        if len(counts) <= 1:
            continue
        majority = counts.index[0]
        others = frame[frame[single.column].notna() & (frame[single.column] != majority)]
        summary = ", ".join(f"{quoted(v)} ({n} line{'s' if n != 1 else ''})" for v, n in counts.iloc[:5].items())
        positions = frame.index.get_indexer(others.index[:MAX_EXAMPLES])
        examples = [locator.example(int(p), f"{single.column} {quoted(v)} differs from the rest of the file: {summary}", v)
                    for p, v in zip(positions, others[single.column].iloc[:MAX_EXAMPLES])]
        findings.add_examples(f"{single.column}.single", single.description, len(others), examples)


def check_matches_gold(frame: pd.DataFrame, schema: RunSchema, gold, locator: Locator, findings: Findings) -> None:
    ids = schema.ids
    table = gold[ids.expected_from.key]
    for rule in schema.matches_gold:
        truth = pd.Series(table[rule.column].map(str).to_numpy(), index=table[ids.expected_from.column].map(str)).groupby(level=0).first()
        expected = frame[ids.column].map(truth)
        bad = frame[expected.notna() & frame[rule.column].notna() & (frame[rule.column] != expected)]
        if bad.empty:
            continue
        positions = frame.index.get_indexer(bad.index[:MAX_EXAMPLES])
        examples = [locator.example(int(p), f"{ids.label} {quoted(i)} is {rule.column} {quoted(truth[i])} in the test set, "
                                            f"the run says {quoted(v)}", v)
                    for p, i, v in zip(positions, bad[ids.column], bad[rule.column])]
        findings.add_examples(f"{rule.column}.matches-test-set", rule.description, len(bad), examples)


def check_complete_sequence(frame: pd.DataFrame, schema: RunSchema, expected: pd.Index, locator: Locator,
                            findings: Findings) -> None:
    """Every test id the run covers has each value of the sequence (Touché: an image at every rank 1-5)."""
    spec, ids = schema.complete_sequence, schema.ids
    needed = set(range(spec.first, spec.last + 1))
    rows = frame[frame[ids.column].isin(expected) & frame[spec.column].notna()]
    present = rows.groupby(ids.column, sort=False)[spec.column].agg(set)
    gaps = [(i, sorted(needed - values)) for i, values in present.items() if not needed <= values]
    if not gaps:
        return
    examples = [locator.file_example(
        f"{ids.label} {quoted(i)} has no {spec.column} {', '.join(map(str, missing))}: {spec.description}", i)
        for i, missing in gaps[:MAX_EXAMPLES]]
    findings.add_examples(f"{spec.column}.complete", spec.description, len(gaps), examples)


def check_sizes(frame: pd.DataFrame, schema: RunSchema, gold, locator: Locator, findings: Findings) -> None:
    """Each mask has the source image's size, which is the size of the annotators' masks."""
    source = schema.file.size_from_gold
    table = gold[source.key].drop_duplicates(source.column)
    sizes = {item: mask.shape for item, mask in zip(table[source.column], table["mask"])}
    bad = []
    for position, (item, width, height) in enumerate(zip(frame[source.column], frame["width"], frame["height"])):
        if item in sizes and width is not None and (height, width) != sizes[item]:
            bad.append((position, item, width, height))
    examples = [locator.example(p, f"the mask is {w}x{h} pixels (width x height) but image {quoted(i)} is "
                                   f"{sizes[i][1]}x{sizes[i][0]}") for p, i, w, h in bad[:MAX_EXAMPLES]]
    if bad:
        findings.add_examples("mask.size", "every mask has the source image's size", len(bad), examples)


def check_large_allowed_sets(frame: pd.DataFrame, schema: RunSchema, gold, locator: Locator, findings: Findings) -> None:
    """``allowed_from_gold`` sets too large for GX (see ``expectations.GX_SET_LIMIT``)."""
    from include.campaign.validation.expectations import GX_SET_LIMIT

    for field in schema.fields:
        source = field.allowed_from_gold
        if source is None or field.name not in frame:
            continue
        allowed = pd.Index(gold[source.key][source.column].dropna().map(str).unique())
        if len(allowed) <= GX_SET_LIMIT:
            continue
        values = frame[field.name]
        bad = values[values.notna() & ~values.isin(allowed)]
        positions = frame.index.get_indexer(bad.index[:MAX_EXAMPLES])
        examples = [locator.example(int(p), f"{field.label} {quoted(v)} is not one the test set uses", v)
                    for p, v in zip(positions, bad.iloc[:MAX_EXAMPLES])]
        if len(bad):
            findings.add_examples(f"{field.name}.allowed", f"{field.label} ({field.name}) is one the test set uses",
                                  len(bad), examples)
