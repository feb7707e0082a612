"""Collecting broken rules: each rule keeps its count and up to ten example locations.

A *finding* is one broken rule with its total count and the first examples; the validator adds
to a :class:`Findings` collector as it goes and the report is rendered from it. A
:class:`StopValidation` ends validation early when the run cannot be read any further (not a zip,
invalid JSON): the rules found so far are still reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field

MAX_EXAMPLES = 10
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
SHOWN_VALUE_LENGTH = 80


def shown(value: object) -> str:
    """A run's value made safe to show: control characters escaped, long text cut, and
    spreadsheet-formula text (leading ``= + - @``) prefixed with ``'`` so no spreadsheet or
    mail client that pastes it into a cell evaluates it."""
    text = str(value)
    if len(text) > SHOWN_VALUE_LENGTH:
        text = text[:SHOWN_VALUE_LENGTH] + "…"
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    if str(value).startswith(FORMULA_PREFIXES):
        text = "'" + text
    return text


def quoted(value: object) -> str:
    """``shown`` in double quotes, for use inside sentences."""
    return f'"{shown(value)}"'


@dataclass
class Example:
    """Where one instance of a broken rule is, and what is wrong there."""

    file: str
    message: str
    line: int | None = None
    member: str | None = None
    value: object = None

    def as_dict(self) -> dict:
        entry = {"file": self.file, "line": self.line, "message": self.message}
        if self.member is not None:
            entry["member"] = self.member
        if self.value is not None:
            entry["value"] = self.value if isinstance(self.value, (int, float, bool)) else str(self.value)
        return entry

    def location(self) -> str:
        if self.line is not None:
            return f"{self.file} line {self.line}"
        if self.member is not None:
            return f"{self.file}: {shown(self.member)}"
        return self.file


@dataclass
class Finding:
    """One broken rule: identifier, what the rule says, how often it is broken, examples."""

    rule: str
    description: str
    count: int = 0
    examples: list[Example] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "description": self.description,
            "count": self.count,
            "examples": [example.as_dict() for example in self.examples],
        }


class Findings:
    """Every broken rule of one run, in the order first met."""

    def __init__(self) -> None:
        self._by_rule: dict[str, Finding] = {}

    def add(self, rule: str, description: str, example: Example | None = None, count: int = 1) -> None:
        """Record ``count`` more breaks of ``rule``, keeping ``example`` while fewer than ten are kept."""
        finding = self._by_rule.setdefault(rule, Finding(rule, description))
        finding.count += count
        if example is not None and len(finding.examples) < MAX_EXAMPLES:
            finding.examples.append(example)

    def add_examples(self, rule: str, description: str, count: int, examples: list[Example]) -> None:
        """Record ``count`` breaks at once, of which ``examples`` are the first few."""
        finding = self._by_rule.setdefault(rule, Finding(rule, description))
        finding.count += count
        room = MAX_EXAMPLES - len(finding.examples)
        finding.examples.extend(examples[:room])

    def __bool__(self) -> bool:
        return bool(self._by_rule)

    def __iter__(self):
        return iter(self._by_rule.values())

    def rules(self) -> list[str]:
        return list(self._by_rule)

    def total(self) -> int:
        return sum(finding.count for finding in self._by_rule.values())


class StopValidation(Exception):
    """Raised inside validation when the run cannot be read further; never leaves the package."""
