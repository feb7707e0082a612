"""Hardening regressions (issue 11): the lifecycle tests' campaign and helpers, shared here."""
from tests.lifecycle.conftest import ctx  # noqa: F401  (fixture)
