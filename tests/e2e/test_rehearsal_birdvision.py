"""Acceptance of issue 19: an organizer rehearses a non-ImageCLEF campaign with their own data.

"BirdVision 2026" (Europe/Zurich) has a concept-detection task with its own concept ids
(``B`` + 7 digits, through ``format_options``) and no manual concepts, and a multiple-choice task.
The test stages the data exactly as docs/organizers.md says and runs only documented commands:
``check``, ``check-staging`` would need a running S3 (covered in tests/organizers), and
``simulate CONFIG --data DIR``, which replays every stage to the results e-mails.
"""
from __future__ import annotations

import email
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.organizers.conftest import BIRDVISION

PROJECT_ROOT = Path(__file__).resolve().parents[2]
OPTIONS = """    format_options:
      concept_pattern: 'B[0-9]{7}'
      concept_hint: a BirdVision species code, B followed by 7 digits
"""
IMAGES = ["b1", "b2", "b3", "b4"]
TAGS = {"b1": ["B0000001", "B0000002"], "b2": ["B0000003"], "b3": ["B0000001"], "b4": ["B0000004", "B0000002"]}
QUESTIONS = [("q1", "de", "A"), ("q2", "de", "C"), ("q3", "fr", "B"), ("q4", "fr", "D")]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _manifest(root: Path) -> None:
    """MANIFEST.json as docs/organizers.md's snippet writes it."""
    files = [{"path": p.relative_to(root).as_posix(), "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
              "size": p.stat().st_size, "ground_truth": False}
             for p in sorted(root.rglob("*")) if p.is_file() and p.name != "MANIFEST.json"]
    (root / "MANIFEST.json").write_text(json.dumps({"files": files}, indent=2))


def _concepts_csv(rows: dict[str, list[str]]) -> bytes:
    return ("ID,CUIs\n" + "".join(f"{i},{';'.join(c)}\n" for i, c in rows.items())).encode()


def _concept_run(rows: dict[str, list[str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("submission.csv", "".join(f"{i},{';'.join(c)}\n" for i, c in rows.items()))
    return buffer.getvalue()


def stage(data: Path) -> None:
    for split in ("dev", "test"):
        for image in IMAGES:
            _write(data / f"staging/bird-tags/{split}/images/{split}-{image}.jpg", f"jpeg {split} {image}".encode() * 20)
        _write(data / f"staging/bird-quiz/{split}/questions.json", json.dumps([{"id": q, "language": lang} for q, lang, _ in QUESTIONS]).encode())
    _write(data / "staging/bird-tags/dev/dev-labels.csv", _concepts_csv({f"dev-{i}": TAGS[i] for i in IMAGES}))  # dev labels: staging only
    for root in (data / "staging").glob("*/*"):
        _manifest(root)
    _write(data / "gold/bird-tags/test/concepts.csv", _concepts_csv(TAGS))
    _write(data / "gold/bird-quiz/test/answers.json", json.dumps([{"id": q, "answer_key": a, "language": lang} for q, lang, a in QUESTIONS]).encode())
    teams = {"wrens": ("Wren Watchers", "wrens@birds.example.org"), "owls": ("Night Owls", "owls@birds.example.org")}
    for name, (team, address) in teams.items():
        document = {"team_name": team, "affiliation": "University of Bern", "country": "CH", "contact_name": f"{team} Lead",
                    "contact_email": address, "tasks": ["bird-tags", "bird-quiz"]}
        _write(data / f"registrations/{name}.json", json.dumps(document, indent=2).encode())
    _write(data / "runs/bird-tags/wrens/run-01", _concept_run(TAGS))
    _write(data / "runs/bird-tags/owls/run-01", _concept_run({**TAGS, "b4": ["B0000004"]}))
    _write(data / "runs/bird-tags/owls/run-02", _concept_run({**TAGS, "b2": ["C0000003"]}))  # a UMLS id: invalid here
    full = [{"id": q, "answer_key": a, "language": lang} for q, lang, a in QUESTIONS]
    _write(data / "runs/bird-quiz/wrens/run-01", json.dumps(full).encode())
    _write(data / "runs/bird-quiz/owls/run-01", json.dumps([r for r in full if r["language"] == "de"]).encode())  # one language


@pytest.mark.airflow
def test_an_organizer_rehearses_birdvision_with_their_own_data_to_the_results_emails(tmp_path):
    config = tmp_path / "birdvision2026.yaml"
    config.write_text(BIRDVISION.replace("    metrics: [concept_f1]\n", "    metrics: [concept_f1]\n" + OPTIONS, 1))
    data = tmp_path / "rehearsal"
    stage(data)
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    environment.pop("AIRFLOW_HOME", None)

    checked = subprocess.run([sys.executable, "-m", "include.cli", "check", str(config)], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr
    report_path, workdir = tmp_path / "report.json", tmp_path / "work"
    replay = subprocess.run([sys.executable, "-m", "devtools.simulate", str(config), "--data", str(data), "--workdir", str(workdir),
                             "--report", str(report_path), "--step", "2"], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=900)
    assert replay.returncode == 0, replay.stdout[-4000:] + replay.stderr[-4000:]
    out = replay.stdout
    for stage_name in ("birdvision2026_registration", "birdvision2026_registration_intake", "birdvision2026_data_release",
                       "birdvision2026_run_collection", "birdvision2026_scoring", "birdvision2026_results"):
        assert f"ok   {stage_name}" in out, out
    report = json.loads(report_path.read_text())
    tags = {(r["team"], r["run"]): r for r in report["leaderboards"]["bird-tags"]["rows"]}
    assert tags[("wren-watchers", "run-01")]["rank"] == 1
    assert tags[("night-owls", "run-02")]["status"] == "invalid"
    quiz = {(r["team"], r["run"]): r for r in report["leaderboards"]["bird-quiz"]["rows"]}
    assert quiz[("wren-watchers", "run-01")]["status"] == "ranked"

    mails = [email.message_from_bytes(p.read_bytes()) for p in sorted((workdir / "mail").rglob("*.eml"))]
    results = [m for m in mails if "results" in (m["Subject"] or "").lower()]
    assert {m["To"] for m in results} >= {"wrens@birds.example.org", "owls@birds.example.org"}, [m["Subject"] for m in mails]
    owls = "\n".join(m.get_payload(decode=True).decode() for m in results if m["To"] == "owls@birds.example.org")
    assert "BirdVision species code" in owls and "line" in owls
    assert "UMLS" not in owls
