"""A 600-byte campaign file whose YAML aliases stand for a billion values is a file error, found at once.

Before, ``check`` built the billion values (all the memory, then a traceback after 44 s), and the
DAG processor did the same for every campaign file on every loop.
"""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEMORY_CAP = 1024**3  # the check runs in a child capped at 1 GiB: a bomb that expands dies there, not here


def billion_laughs(levels: int = 9, width: int = 10) -> str:
    """``width ** levels`` values from a few hundred bytes of nested aliases."""
    lines = ['lol0: &lol0 [' + ", ".join(['"lol"'] * width) + "]"]
    lines += [f"lol{n}: &lol{n} [" + ",".join([f"*lol{n - 1}"] * width) + "]" for n in range(1, levels)]
    lines.append(f"tasks: *lol{levels - 1}")
    return "\n".join(lines) + "\n"


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def test_check_refuses_an_alias_bomb_as_a_file_error(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs())
    assert bomb.stat().st_size < 800
    result = subprocess.run([sys.executable, "-m", "include.cli", "check", str(bomb)], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, preexec_fn=_cap_memory, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert f"{bomb}:1: (top level): through YAML aliases (*name) the document expands to more than 100,000 values" in result.stderr


def test_a_self_referencing_alias_is_refused_too():
    from include.campaign.config import ConfigError, parse_campaign

    try:
        parse_campaign("id: x\ntasks: &loop [*loop]\n", "loop.yaml")
    except ConfigError as error:
        assert "through YAML aliases" in error.render()
    else:
        raise AssertionError("a looping alias was accepted")


def test_a_few_aliases_for_repeated_blocks_still_work():
    import yaml

    from include.campaign.config import parse_campaign

    data = yaml.safe_load((ROOT / "include" / "campaigns" / "imageclef2025.yaml").read_text())
    first = data["tasks"][0]
    first["organizers"] = "ALIAS"
    text = yaml.safe_dump(data, sort_keys=False)
    text = text.replace("organizers: ALIAS", "organizers: *chairs", 1)
    text = text.replace("organizers:\n", "organizers: &chairs\n", 1)
    campaign = parse_campaign(text, "aliases.yaml")
    assert campaign.tasks[0].organizers == campaign.organizers


DAGBAG_PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("bomb_campaign_file_error")
print(json.dumps({"errors": {str(k): str(v)[-500:] for k, v in bag.import_errors.items()}, "doc": dag.doc_md if dag else None}))
"""


def test_the_dag_processor_shows_the_bomb_as_an_error_dag(tmp_path):
    import json

    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    shutil.copy(ROOT / "include" / "campaigns" / "imageclef2025.yaml", campaigns / "imageclef2025.yaml")
    (campaigns / "bomb.yaml").write_text(billion_laughs())
    result = subprocess.run([sys.executable, "-c", DAGBAG_PROBE, str(ROOT / "dags" / "campaign_file_check.py")], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, preexec_fn=_cap_memory, env=dict(os.environ, PYTHONPATH=str(ROOT), CLEF_CAMPAIGNS_DIR=str(campaigns)))
    assert result.returncode == 0, result.stderr[-2000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    assert "expands to more than 100,000 values" in parsed["doc"]
