"""Size limits that keep a hostile run from exhausting disk, memory or time.

The campaign file carries these keys under ``run_limits`` (globally, with per-task overrides,
so each task sets what its run format needs). :class:`RunLimits` is the campaign model's own class,
built from the one table ``include.campaign.config.RUN_LIMITS`` (names, defaults, bounds), so
``campaign.task_run_limits(task)`` is handed to the validator as it is.

A text run (CSV, JSON, JSON lines) is parsed whole: its memory grows about ten-fold with its text
(``benchmarks/parse_memory.py``: 9 to 13 MB per MiB), so ``max_text_bytes`` bounds the text a
parser holds. At 32 MiB a validation peaks near 0.4 GB over the interpreter's, where the 2 GiB
``max_uncompressed_bytes`` let one zipped CSV reach about 21 GB; the largest real ImageCLEF 2025
text run is about 16 MiB (concept detection: 17,000 images with up to 100 CUIs each). Image runs
are read one member at a time, so ``max_uncompressed_bytes`` stays their bound.
"""
from __future__ import annotations

from include.campaign.config import GIB, MIB, RunLimits

__all__ = ["GIB", "MIB", "RunLimits"]
