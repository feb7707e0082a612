"""A non-ImageCLEF campaign ("BirdVision 2026", Europe/Zurich) and data staged as docs/organizers.md says."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

BIRDVISION = """\
id: birdvision2026
name: BirdVision 2026
lab: BirdVision, a made-up lab of bird photographs
timezone: Europe/Zurich
organizers:
  - {name: Ada Chair, email: chair@birdvision.example.org}
contact_email: chair@birdvision.example.org
schedule:
  registration_opens: 2026-01-10
  registration_closes: 2026-04-20
  dev_data_release: 2026-02-01
  test_data_release: 2026-03-20
  run_deadline: 2026-04-30
  results_release: 2026-05-08
  working_notes_deadline: 2026-05-29
  notification: 2026-06-20
  camera_ready: 2026-07-03
  conference_start: 2026-09-21
  conference_end: 2026-09-24
tasks:
  - id: bird-tags
    title: Bird species tags
    run_format: caption-concepts-csv
    metrics: [concept_f1]
    runs_allowed: 3
    organizers: [{name: Tag Lead, email: tags@birdvision.example.org}]
  - id: bird-quiz
    title: Bird quiz
    run_format: multimodal-reasoning-json
    metrics: [mmr_accuracy]
    runs_allowed: 2
"""


def write_campaign(folder: Path, text: str = BIRDVISION) -> Path:
    path = folder / "birdvision2026.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def campaign_file(tmp_path) -> Path:
    return write_campaign(tmp_path)


def manifest(files: dict[str, bytes], ground_truth: tuple[str, ...] = ()) -> bytes:
    """MANIFEST.json as docs/organizers.md describes it."""
    entries = [{"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "ground_truth": path in ground_truth}
               for path, data in sorted(files.items())]
    return json.dumps({"files": entries}, indent=2).encode()


def stage_split(store, campaign_id: str, task: str, split: str, files: dict[str, bytes], ground_truth: tuple[str, ...] = (), manifest_bytes: bytes | None = None) -> None:
    prefix = f"{campaign_id}/staging/{task}/{split}/"
    for path, data in files.items():
        store.put_bytes(prefix + path, data)
    store.put_bytes(prefix + "MANIFEST.json", manifest_bytes if manifest_bytes is not None else manifest(files, ground_truth))


def put_gold(store, campaign_id: str, task: str, split: str, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        store.put_bytes(f"{campaign_id}/gold/{task}/{split}/{path}", data)
