"""Demo data for a whole campaign, generated deterministically in memory (see :mod:`devtools.demo.data`).

``build_demo(campaign, seed)`` makes every task's staged data, gold, runs and the campaign's
registrations; ``load_demo(ctx, demo)`` puts the data, gold and agreements into the object store.
"""
from __future__ import annotations

from devtools.demo.data import DEFAULT_SEED, DemoData, DemoRun, build_demo, write_tree
from devtools.demo.load import load_demo
from devtools.demo.teams import AFTER_DEV_RELEASE, AGREEMENT_NOT_APPROVED, INVALID, LATE, DemoRegistration

__all__ = [
    "AFTER_DEV_RELEASE", "AGREEMENT_NOT_APPROVED", "DEFAULT_SEED", "DemoData", "DemoRegistration", "DemoRun",
    "INVALID", "LATE", "build_demo", "load_demo", "write_tree",
]
