"""Readers for the deployment files that the tests in this folder check, and Compose's interpolation.

The compose file is read with PyYAML (merge keys ``<<:`` included), the way Compose reads it before
interpolation. :func:`interpolate` applies Compose's rules for ``${NAME}``, ``${NAME:-default}``,
``${NAME-default}``, ``${NAME:?message}``, ``${NAME?message}`` and ``$$`` so that a test can see
the value a container would get for a given `.env`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yaml"
HELM_VALUES_FILE = PROJECT_ROOT / "deploy" / "helm-values.yaml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
ENV_EXAMPLE_FILE = PROJECT_ROOT / ".env.example"
REQUIREMENTS_FILE = PROJECT_ROOT / "requirements.txt"

# `$$` (an escaped dollar) or `${NAME<modifier><argument>}`; the argument may not contain `}`.
_REFERENCE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<modifier>:?[-?])(?P<argument>[^}]*))?\}")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


@dataclass(frozen=True)
class Reference:
    """One ``${...}`` in the compose file."""

    name: str
    modifier: str | None  # None, ":-", "-", ":?" or "?"
    argument: str

    @property
    def required(self) -> bool:
        return self.modifier == ":?"

    @property
    def default(self) -> str | None:
        return self.argument if self.modifier in (":-", "-") else None


class MissingVariable(KeyError):
    """A ``${NAME:?...}`` met an unset or empty NAME."""


def references(text: str) -> list[Reference]:
    found = []
    for match in _REFERENCE.finditer(text):
        if match.group(0) != "$$":
            found.append(Reference(match.group("name"), match.group("modifier"), match.group("argument") or ""))
    return found


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """``text`` with every reference replaced as Compose would for ``environ``."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, modifier, argument = match.group("name"), match.group("modifier"), match.group("argument") or ""
        value = environ.get(name)
        if modifier == ":-":
            return value if value else argument
        if modifier == "-":
            return argument if value is None else value
        if modifier in (":?", "?") and (value is None or (modifier == ":?" and value == "")):
            raise MissingVariable(f"{name}: {argument}")
        return value or ""

    return _REFERENCE.sub(replace, text)


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_compose() -> dict:
    return load_yaml(COMPOSE_FILE)


def load_helm_values() -> dict:
    return load_yaml(HELM_VALUES_FILE)


def env_example() -> dict[str, str]:
    """The assignments of `.env.example`, in file order."""
    pairs = {}
    for line in ENV_EXAMPLE_FILE.read_text(encoding="utf-8").splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            pairs[match.group(1)] = match.group(2)
    return pairs


def requirement_pins() -> dict[str, str]:
    """``name==version`` lines of requirements.txt, names lower-cased."""
    pins = {}
    for line in REQUIREMENTS_FILE.read_text(encoding="utf-8").splitlines():
        requirement = line.split("#", 1)[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==", 1)
            pins[name.split("[", 1)[0].strip().lower()] = version.strip()
    return pins


def dockerfile_base_image() -> str:
    """The image of the Dockerfile's first FROM line (the later stages build on it: `default`, `models`)."""
    bases = [line.split()[1] for line in DOCKERFILE.read_text(encoding="utf-8").splitlines() if line.upper().startswith("FROM ")]
    assert bases, f"{DOCKERFILE}: no FROM line"
    return bases[0]
