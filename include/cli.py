"""The organizers' and participants' command line: ``python -m include.cli COMMAND``.

Each command lives in its own module under ``include/commands/`` and exposes
``register(subparsers)``; this module only discovers them, so adding a command never
touches this file. Every command returns an exit code: 0 success, 1 the input was
checked and found wrong (an invalid run, say), 2 a usage or configuration error.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import include.commands as commands_package


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m include.cli",
        description="clef-campaign: check campaign files, read calendars, validate and score runs.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands_package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands_package.__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
