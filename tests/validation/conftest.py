"""Fixtures for the run-validation tests: gold folders per format (written once per session) and
a way to call the ``validate`` command in-process, as participants do from the shell."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from validation_fixtures import write_gold  # noqa: E402

from include.cli import main  # noqa: E402


@pytest.fixture(scope="session")
def gold_for(tmp_path_factory):
    """``gold_for(format)``: the standard gold folder of a format (see validation_fixtures)."""
    root = tmp_path_factory.mktemp("gold")

    def get(format_name: str) -> Path:
        folder = root / format_name
        if not folder.exists():
            write_gold(format_name, folder)
        return folder

    return get


@pytest.fixture
def validate_cli(capsys):
    """``validate_cli(*args)`` runs ``python -m include.cli validate ARGS`` in-process and returns
    (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(["validate", *map(str, args)])
        except SystemExit as exit_:  # argparse usage errors
            code = exit_.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
