"""Size limits that keep a hostile run from exhausting disk, memory or time.

The campaign file carries the same keys under ``run_limits`` (globally, with per-task overrides,
so each task sets what its run format needs); the campaign config model builds a
:class:`RunLimits` from them.

A text run (CSV, JSON, JSON lines) is parsed whole: its memory grows about ten-fold with its text
(``benchmarks/parse_memory.py``: 9 to 13 MB per MiB), so ``max_text_bytes`` bounds the text a
parser holds. At 32 MiB a validation peaks near 0.4 GB over the interpreter's, where the 2 GiB
``max_uncompressed_bytes`` let one zipped CSV reach about 21 GB; the largest real ImageCLEF 2025
text run is about 16 MiB (concept detection: 17,000 images with up to 100 CUIs each). Image runs
are read one member at a time, so ``max_uncompressed_bytes`` stays their bound.
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
    max_text_bytes: int = 32 * MIB
    """Largest text file a parser reads whole (the CSV or JSON of a run, bare or in its zip)."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"run limit {name} must be a positive number, got {value!r}")

    def as_dict(self) -> dict:
        """The limits as JSON-able numbers, for reports."""
        return asdict(self)
