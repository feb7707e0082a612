"""Demo data for a whole campaign, generated deterministically in memory (see :mod:`include.demo.data`).

``build_demo(campaign, seed)`` makes every task's staged data, gold, runs and the campaign's
registrations; ``load_demo(ctx, demo)`` puts the data, gold and agreements into the object store.
"""
from __future__ import annotations

from include.demo.data import DEFAULT_SEED, DemoData, DemoRun, build_demo, write_tree
from include.demo.load import load_demo
from include.demo.teams import AFTER_DEV_RELEASE, AGREEMENT_NOT_APPROVED, INVALID, LATE, DemoRegistration

__all__ = [
    "AFTER_DEV_RELEASE", "AGREEMENT_NOT_APPROVED", "DEFAULT_SEED", "DemoData", "DemoRegistration", "DemoRun",
    "INVALID", "LATE", "build_demo", "load_demo", "write_tree",
]
