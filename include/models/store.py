"""The model directory: which models are present, their size, and each model loaded once per process.

Every loader switches hub access off first (``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1``,
``MEDCAT_DISABLE_VERSION_CHECK=true`` and ``local_files_only=True``), so a missing file is an error naming the folder, never a download.
Loaded models are kept in a module-level cache keyed by (loader, folder): a worker process of the
``models`` queue loads each model once, however many runs and batches it scores.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from include.models.catalog import model_spec

_CACHE: dict[tuple[str, str], Any] = {}
_CACHE_LOCK = threading.Lock()
LOADS: dict[tuple[str, str], int] = {}  # how many times each model was loaded in this process (tests, logs)


class ModelMissing(Exception):
    """A model's weights are not in the model directory; the text names the model and the folder."""


@dataclass(frozen=True)
class ModelDirectory:
    """``<root>/<model name>`` for every model; ``root`` None means no model directory is configured."""

    root: Path | None

    @classmethod
    def of(cls, value: str | Path | None) -> "ModelDirectory":
        return cls(Path(value) if value else None)

    def path(self, name: str) -> Path:
        if self.root is None:
            raise ModelMissing(f"model {name} not available: no model directory is set (CLEF_MODEL_DIR)")
        return self.root / name

    def present(self, name: str) -> bool:
        return self.root is not None and _has_files(self.root / name)

    def size(self, name: str) -> int:
        """Bytes of every file under the model's folder (0 when absent)."""
        if not self.present(name):
            return 0
        return sum(p.stat().st_size for p in (self.root / name).rglob("*") if p.is_file())

    def require(self, name: str) -> Path:
        """The model's folder; :class:`ModelMissing` with the fetch command when it is absent."""
        path = self.path(name)
        if not _has_files(path):
            raise ModelMissing(f"model {name} not available in {self.root} "
                               f"(fetch it with: {model_spec(name).fetch_command(self.root)})")
        return path

    def missing(self, names: list[str]) -> list[str]:
        return [name for name in names if not self.present(name)]


def _has_files(path: Path) -> bool:
    return path.is_dir() and any(p.is_file() for p in path.rglob("*"))


def offline() -> None:
    """Switch every hub client off for this process (set before transformers is imported)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["MEDCAT_DISABLE_VERSION_CHECK"] = "true"  # else importing medcat asks PyPI for a newer version
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cached(loader_name: str, folder: Path, load: Callable[[Path], Any]) -> Any:
    """``load(folder)`` once per process and folder; later calls return the same object."""
    key = (loader_name, str(Path(folder).resolve()))
    with _CACHE_LOCK:
        if key not in _CACHE:
            offline()
            _CACHE[key] = load(Path(folder))
            LOADS[key] = LOADS.get(key, 0) + 1
        return _CACHE[key]


def human_size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"
