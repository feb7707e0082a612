"""Write `.env` for docker-compose.yaml from `.env.example`, generating every secret it lacks.

    python3 deploy/make_env.py            # writes ./.env (mode 600); refuses to overwrite one
    python3 deploy/make_env.py --output /path/to/.env

Every variable that docker-compose.yaml requires (``${NAME:?...}``) and that `.env.example` leaves
empty gets a fresh random value: a Fernet key for ``AIRFLOW__CORE__FERNET_KEY``, a short access key
id for ``*_KEY_ID``, 32 random bytes in hex for the others (hex and base64url need no quoting in a
URL, a JSON string or a `.env` line). ``AIRFLOW_UID`` becomes the caller's uid. Everything else is
copied as it is, comments included, so `.env` stays documented. Standard library only: it runs with
the system's Python before anything is installed.
"""
from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yaml"
EXAMPLE_FILE = PROJECT_ROOT / ".env.example"

# `${NAME:?message}` in a compose file: NAME must be set and not empty. `$${...}` is an escaped `$`.
_REQUIRED_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*):\?")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


class EnvFileError(Exception):
    """The `.env` cannot be written as asked; the message says why and what to do."""


def required_variables(compose_text: str) -> set[str]:
    """Names that the compose file requires to be set and non-empty."""
    return set(_REQUIRED_VARIABLE.findall(compose_text))


def fernet_key() -> str:
    """A Fernet key as Airflow wants it: 32 random bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def generated_value(name: str) -> str:
    if name == "AIRFLOW__CORE__FERNET_KEY":
        return fernet_key()
    if name.endswith("_KEY_ID"):
        return "clef" + secrets.token_hex(8)
    return secrets.token_hex(32)


def fill_template(example_text: str, required: set[str], uid: int | None) -> tuple[str, list[str]]:
    """The `.env` text and the names that were generated, in file order."""
    lines, generated = [], []
    for line in example_text.splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            name, value = match.groups()
            if name == "AIRFLOW_UID" and uid:
                line = f"{name}={uid}"
            elif name in required and not value.strip():
                line = f"{name}={generated_value(name)}"
                generated.append(name)
        lines.append(line)
    return "\n".join(lines) + "\n", generated


def missing_declarations(example_text: str, required: set[str]) -> list[str]:
    declared = {m.group(1) for m in map(_ASSIGNMENT.match, example_text.splitlines()) if m}
    return sorted(required - declared)


def write_env(output: Path, compose_file: Path = COMPOSE_FILE, example_file: Path = EXAMPLE_FILE, uid: int | None = None) -> list[str]:
    """Write `output`; returns the generated names. Never overwrites an existing file."""
    if output.exists():
        raise EnvFileError(f"{output} already exists; delete it first to generate new secrets (the old ones are then lost).")
    required = required_variables(compose_file.read_text(encoding="utf-8"))
    example_text = example_file.read_text(encoding="utf-8")
    missing = missing_declarations(example_text, required)
    if missing:
        raise EnvFileError(f"{example_file}: {compose_file.name} requires {', '.join(missing)}, which it does not declare.")
    text, generated = fill_template(example_text, required, uid)
    # Created with mode 600 from the start: the secrets are never readable by others, not even briefly.
    descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    return generated


def caller_uid() -> int | None:
    """The uid to own files in the log volume; None (keep 50000) for root or where there is no uid."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return uid or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / ".env", help="where to write (default: ./.env)")
    args = parser.parse_args(argv)
    try:
        generated = write_env(args.output, uid=caller_uid())
    except (EnvFileError, OSError) as exc:
        print(f"make_env: {exc}", file=sys.stderr)
        return 1
    print(f"make_env: wrote {args.output} with new values for {', '.join(generated) or 'nothing'}.")
    print("make_env: the admin password for the Airflow UI is AIRFLOW_ADMIN_PASSWORD in that file.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
