"""What every metric returns: the overall value, the per-item values and why a value is missing."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is only needed by callers that build per-item series
    import pandas


@dataclass
class MetricResult:
    """One metric's outcome on one run.

    ``value`` is exact (never rounded); ``per_item`` is indexed by item id (image, question,
    argument, ...) for significance tests and per-team reports; ``breakdown`` holds named
    sub-scores (per language, per question family). When the metric cannot be computed,
    ``value`` is None and ``not_computed`` says why: a missing value is never reported as 0.
    """

    value: float | None
    per_item: "pandas.Series | None" = None
    breakdown: dict[str, float] = field(default_factory=dict)
    not_computed: str | None = None
    # Corpus-level metrics only: additive per-item components (columns named by the registry's
    # corpus rule, e.g. numerator/denominator) from which significance tests recompute the value.
    components: "pandas.DataFrame | None" = None

    @classmethod
    def missing(cls, reason: str) -> "MetricResult":
        """A result that carries only the reason it could not be computed."""
        if not reason.startswith("not computed"):
            reason = f"not computed: {reason}"
        return cls(value=None, per_item=None, breakdown={}, not_computed=reason, components=None)

    @property
    def computed(self) -> bool:
        return self.not_computed is None
