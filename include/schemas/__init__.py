"""Run-format schemas: one declarative YAML file per run format, named ``<format>.yaml``.

The file name (without ``.yaml``) is the format's name as campaign files write it. The
registration and campaign schemas live here too, under names that start with ``_``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

SCHEMA_DIR = Path(__file__).resolve().parent


def format_names() -> list[str]:
    """Every run format that has a schema file, sorted."""
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.yaml") if not p.stem.startswith("_"))


@lru_cache(maxsize=None)
def load_schema(format_name: str) -> dict:
    """The parsed schema of one run format; ``KeyError`` names the known formats."""
    path = SCHEMA_DIR / f"{format_name}.yaml"
    if format_name.startswith("_") or not path.is_file():
        raise KeyError(f"unknown run format {format_name!r}; known formats: {', '.join(format_names())}")
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)
