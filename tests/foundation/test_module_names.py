"""No module of the project is named like a standard-library module.

``include/campaign/calendar.py`` and ``statistics.py`` did: a script run from that folder, or a tool
that puts it on ``sys.path``, then imports ours for ``import calendar``. They are ``timeline.py``
and ``significance.py`` now; this keeps it so.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("include", "dags", "plugins", "deploy", "devtools", "benchmarks", "scripts")


def test_no_module_shadows_the_standard_library():
    modules = [path for folder in FOLDERS for path in (ROOT / folder).rglob("*.py")]
    assert len(modules) > 50
    shadowing = sorted(str(path.relative_to(ROOT)) for path in modules if path.stem in sys.stdlib_module_names)
    assert not shadowing, f"named like standard-library modules: {shadowing}"
