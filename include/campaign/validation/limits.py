"""Size limits that keep a hostile run from exhausting disk, memory or time.

The campaign file carries the same four keys under ``run_limits`` (globally, with per-task
overrides); the campaign config model builds a :class:`RunLimits` from them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True)
class RunLimits:
    """Upper bounds applied before and while a run is read."""

    max_bytes: int = 512 * MIB
    """Largest run file accepted, as stored (compressed when it is a zip)."""
    max_uncompressed_bytes: int = 2 * GIB
    """Largest total of the members' uncompressed sizes in a zip."""
    max_compression_ratio: float = 200.0
    """Largest uncompressed/compressed ratio of one zip member (zip bombs reach millions)."""
    max_members: int = 100_000
    """Most entries a zip may hold."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"run limit {name} must be a positive number, got {value!r}")

    def as_dict(self) -> dict:
        """The limits as JSON-able numbers, for reports."""
        return asdict(self)
