"""Every hostile run of ``tests/hostile/`` is refused (exit 1) with its expected message, without
a traceback and without writing anything outside the temporary folder it was copied to."""
from __future__ import annotations

import io
import os
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import yaml

HOSTILE = Path(__file__).resolve().parents[1] / "hostile"
CASES = yaml.safe_load((HOSTILE / "cases.yaml").read_text(encoding="utf-8"))["cases"]
GIB = 1024**3


def case_id(case: dict) -> str:
    return case.get("file") or f"{case['generate']}-{case['format']}"


def sparse_2gb(folder: Path, format_name: str) -> Path:
    """A 2 GiB file that takes no disk space: a size check must refuse it before reading."""
    path = folder / ("run.zip" if format_name.startswith("caption") else "results.jsonl")
    with path.open("wb") as handle:
        handle.truncate(2 * GIB)
    return path


def zip_bomb(folder: Path, format_name: str) -> Path:
    """64 MiB of zeros deflated to about 64 KiB (a ratio near 1000)."""
    path = folder / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("submission.csv", "w") as member:
            chunk = b"\0" * (1024 * 1024)
            for _ in range(64):
                member.write(chunk)
    return path


def zip_declaring_3gib(folder: Path, format_name: str) -> Path:
    """A small zip whose headers claim a 3 GiB member: refused from the declared sizes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("prompt0001_img0001.png", b"x" * 64)
    data = bytearray(buffer.getvalue())
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = data.find(signature)
        data[start + size_offset:start + size_offset + 4] = struct.pack("<I", 3 * GIB)
    path = folder / "declared.zip"
    path.write_bytes(bytes(data))
    return path


GENERATORS = {"sparse-2gb": sparse_2gb, "zip-bomb": zip_bomb, "zip-declared-3gib": zip_declaring_3gib}


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")}


def test_there_are_at_least_forty_committed_hostile_files_across_the_formats():
    files = [case for case in CASES if "file" in case]
    assert len(files) >= 40
    assert {case["format"] for case in files} == set(
        __import__("include.schemas", fromlist=["format_names"]).format_names())
    for case in files:
        assert (HOSTILE / case["file"]).is_file(), case["file"]
        assert (HOSTILE / case["file"]).stat().st_size < 64 * 1024, f"{case['file']} is not tiny"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_hostile_run_is_refused_with_its_message(case, tmp_path, gold_for, validate_cli, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    if "file" in case:
        run = work / case["file"]
        shutil.copyfile(HOSTILE / case["file"], run)
    else:
        run = GENERATORS[case["generate"]](work, case["format"])
    absolute_target = Path("/tmp/submission.csv")
    existed = absolute_target.exists()
    monkeypatch.chdir(work)
    before = snapshot(tmp_path)

    code, out, err = validate_cli("--format", case["format"], "--run", run, "--gold", gold_for(case["format"]))

    assert code == 1, out + err
    assert case["expect"] in out, f"expected {case['expect']!r} in:\n{out}"
    assert "Traceback" not in out + err
    assert snapshot(tmp_path) == before, "something was written next to the run"
    assert absolute_target.exists() == existed


def test_generated_big_inputs_stay_cheap(tmp_path):
    big = sparse_2gb(tmp_path, "caption-concepts-csv")
    assert big.stat().st_size == 2 * GIB
    assert big.stat().st_blocks * 512 < 1024 * 1024, "the 2 GB file must be sparse"


def test_json_report_of_a_hostile_run_carries_file_line_and_rule(gold_for, validate_cli):
    code, out, _ = validate_cli("--format", "vqa-gi-answers-json", "--run", HOSTILE / "vqa-invalid-json-line12.json",
                                "--gold", gold_for("vqa-gi-answers-json"), "--json")
    report = yaml.safe_load(out)  # JSON is YAML
    assert code == 1 and report["verdict"] == "invalid"
    (finding,) = report["rules_broken"]
    assert finding["rule"] == "json.syntax"
    (example,) = finding["examples"]
    assert example["file"] == "vqa-invalid-json-line12.json" and example["line"] == 12
    assert os.linesep not in example["message"]
