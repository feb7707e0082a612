"""The Airflow internals the replay relies on still exist, with the parameters it passes.

:mod:`devtools.airflow_internals` lists each private name it uses (``CALLABLES_RELIED_ON``,
``ATTRIBUTES_RELIED_ON``). On an Airflow upgrade that renames, moves or re-signs one of them these
tests fail, naming it, instead of a replay hanging or failing somewhere inside ``dag.test()``.
The last two tests keep the lists honest: the module imports nothing from Airflow they do not name,
and no other module of the dev wing imports Airflow at all.
"""
from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import airflow
from devtools import airflow_internals

DEVTOOLS = Path(airflow_internals.__file__).resolve().parent
UPGRADE_HINT = f"Airflow {airflow.__version__}: devtools/airflow_internals.py relies on {{}}; adapt that module (and its lists) to this Airflow"


def resolve(reference: str):
    module_name, _, qualified = reference.partition(":")
    try:
        target = importlib.import_module(module_name)
    except ImportError as error:
        pytest.fail(UPGRADE_HINT.format(reference) + f" (module gone: {error})")
    for part in qualified.split("."):
        if not hasattr(target, part):
            pytest.fail(UPGRADE_HINT.format(reference) + f" ({part} is gone)")
        target = getattr(target, part)
    return target


@pytest.mark.parametrize("reference", sorted(airflow_internals.CALLABLES_RELIED_ON))
def test_each_callable_still_takes_the_parameters_passed(reference):
    target = resolve(reference)
    assert callable(target), UPGRADE_HINT.format(reference) + " (no longer callable)"
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError) as error:
        pytest.fail(UPGRADE_HINT.format(reference) + f" (no signature: {error})")
    takes_any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    missing = [name for name in airflow_internals.CALLABLES_RELIED_ON[reference] if name not in parameters and not takes_any_keyword]
    assert not missing, UPGRADE_HINT.format(reference) + f" (parameters {missing} are gone; it takes {list(parameters)})"


@pytest.mark.parametrize("reference", sorted(airflow_internals.ATTRIBUTES_RELIED_ON))
def test_each_class_still_has_the_attributes_used(reference):
    target = resolve(reference)
    declared = getattr(target, "__annotations__", {})  # a TypedDict's keys
    missing = [name for name in airflow_internals.ATTRIBUTES_RELIED_ON[reference] if not hasattr(target, name) and name not in declared]
    assert not missing, UPGRADE_HINT.format(reference) + f" (attributes {missing} are gone)"


def airflow_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from airflow... import name`` and ``import airflow...`` in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "airflow":
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.split(".")[0] == "airflow"]
    return found


def test_the_lists_name_every_airflow_import_of_the_module():
    declared = set(airflow_internals.CALLABLES_RELIED_ON) | set(airflow_internals.ATTRIBUTES_RELIED_ON)
    declared_heads = {module + ":" + qualified.split(".")[0] for module, _, qualified in (r.partition(":") for r in declared)}  # "module:Class" of "module:Class.method"
    public = {("airflow.sdk", "timezone")}  # the task SDK is Airflow's public interface
    undeclared = [f"{module}:{name}" for module, name in airflow_imports(Path(airflow_internals.__file__))
                  if (module, name) not in public and f"{module}:{name}" not in declared_heads]
    assert not undeclared, f"devtools/airflow_internals.py imports {undeclared} without listing them in CALLABLES_RELIED_ON or ATTRIBUTES_RELIED_ON"


def test_no_other_dev_wing_module_imports_airflow():
    others = {str(path.relative_to(DEVTOOLS.parent)): airflow_imports(path) for path in DEVTOOLS.rglob("*.py") if path.name != "airflow_internals.py"}
    offenders = {path: found for path, found in others.items() if found}
    assert not offenders, f"Airflow is reached only through devtools/airflow_internals.py: {offenders}"


def test_the_in_process_execution_api_starts_and_is_the_one_dag_test_uses(airflow_home):
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    airflow_internals.start_in_process_execution_api()
    started = in_process_api_server().app
    airflow_internals.start_in_process_execution_api()
    assert in_process_api_server().app is started  # set up once per process, then reused by dag.test()
