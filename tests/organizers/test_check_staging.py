"""``check-staging``: each problem of the data contract named with its object and its fix; exit 0 on good staging."""
from __future__ import annotations

import json

import pytest

from include.cli import main
from tests.organizers.conftest import manifest, put_gold, stage_split

CAMPAIGN = "birdvision2026"
TAG_FILES = {"images/b1.jpg": b"\xff\xd8 one" * 40, "images/b2.jpg": b"\xff\xd8 two" * 50}
TAG_GOLD = b"ID,CUIs\nb1,B0000001;B0000002\nb2,B0000003\n"
QUIZ_FILES = {"questions.json": json.dumps([{"id": "q1", "language": "de"}, {"id": "q2", "language": "fr"}]).encode()}
QUIZ_GOLD = json.dumps([{"id": "q1", "answer_key": "A", "language": "de"}, {"id": "q2", "answer_key": "C", "language": "fr"}]).encode()


def stage_good(store) -> None:
    for split in ("dev", "test"):
        stage_split(store, CAMPAIGN, "bird-tags", split, TAG_FILES)
        stage_split(store, CAMPAIGN, "bird-quiz", split, QUIZ_FILES)
    put_gold(store, CAMPAIGN, "bird-tags", "test", {"concepts.csv": TAG_GOLD})  # no concepts_manual.csv: no concept_f1_manual
    put_gold(store, CAMPAIGN, "bird-quiz", "test", {"answers.json": QUIZ_GOLD})


def check(campaign_file, store, capsys, *extra) -> tuple[int, str]:
    code = main(["check-staging", str(campaign_file), "--endpoint", store.settings.endpoint_url, "--bucket", store.bucket, *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_good_staging_passes_with_exit_0(campaign_file, store, capsys):
    stage_good(store)
    code, out = check(campaign_file, store, capsys)
    assert code == 0, out
    assert "bird-tags/test: OK" in out and "bird-quiz/dev: OK" in out
    assert "is ready (4 task split(s) checked)" in out


def test_a_missing_file_is_named_with_the_fix(campaign_file, store, capsys):
    stage_good(store)
    store.delete(f"{CAMPAIGN}/staging/bird-tags/dev/images/b2.jpg")
    code, out = check(campaign_file, store, capsys)
    assert code == 1
    assert "bird-tags/dev: 1 problem(s)" in out
    assert f"{CAMPAIGN}/staging/bird-tags/dev/images/b2.jpg: listed in MANIFEST.json but not staged (upload it, or remove it from the manifest)" in out
    assert "bird-tags/test: OK" in out


def test_a_wrong_checksum_is_named_with_the_fix(campaign_file, store, capsys):
    stage_good(store)
    bad = json.loads(manifest(TAG_FILES))
    bad["files"][0]["sha256"] = "0" * 64
    store.put_bytes(f"{CAMPAIGN}/staging/bird-tags/test/MANIFEST.json", json.dumps(bad).encode())
    code, out = check(campaign_file, store, capsys)
    assert code == 1
    assert f"{CAMPAIGN}/staging/bird-tags/test/images/b1.jpg: sha256 differs from the manifest (altered file: stage it again or fix the manifest)" in out


def test_gold_staged_for_release_is_reported_for_every_way_it_is_recognised(campaign_file, store, capsys):
    stage_good(store)
    dev_labels = b"ID,CUIs\nd1,B0000009\n"
    put_gold(store, CAMPAIGN, "bird-tags", "dev", {"concepts.csv": dev_labels})
    files = {**TAG_FILES, "labels/dev-concepts.csv": dev_labels, "truth.csv": b"secret\n", "gold/answers.csv": b"x\n"}
    stage_split(store, CAMPAIGN, "bird-tags", "dev", files, ground_truth=("truth.csv",))
    code, out = check(campaign_file, store, capsys, "--task", "bird-tags", "--split", "dev")
    assert code == 1
    prefix = f"{CAMPAIGN}/staging/bird-tags/dev/"
    assert f"{prefix}truth.csv: ground truth staged for release (marked ground_truth in the manifest)" in out
    assert f"{prefix}gold/answers.csv: ground truth staged for release (inside a folder named gold)" in out
    assert (f"{prefix}labels/dev-concepts.csv: ground truth staged for release (same bytes as the ground-truth object "
            f"{CAMPAIGN}/gold/bird-tags/dev/concepts.csv)") in out
    assert "Labels participants receive (development labels) go in staging only" in out
    assert "3 problem(s)" in out and "bird-quiz" not in out


def test_a_manifest_with_a_syntax_error_is_named_with_line_and_fix(campaign_file, store, capsys):
    stage_good(store)
    broken = manifest(QUIZ_FILES).decode().replace('"size"', '"size" :: ', 1).encode()
    store.put_bytes(f"{CAMPAIGN}/staging/bird-quiz/dev/MANIFEST.json", broken)
    code, out = check(campaign_file, store, capsys)
    assert code == 1
    line = next(l for l in out.splitlines() if "bird-quiz/dev/MANIFEST.json" in l)
    assert ", line 6, column" in line and "not valid JSON" in line and "fix the syntax there and upload the manifest again" in line


def test_missing_and_broken_gold_are_reported_per_task(campaign_file, store, capsys):
    stage_good(store)
    store.delete(f"{CAMPAIGN}/gold/bird-quiz/test/answers.json")
    put_gold(store, CAMPAIGN, "bird-tags", "test", {"concepts.csv": b"image,tags\nb1,B1\n"})
    code, out = check(campaign_file, store, capsys, "--split", "test")
    assert code == 1
    assert f"{CAMPAIGN}/gold/bird-quiz/test/answers.json: missing; stage answers.json: json-list with id, answer_key, language" in out
    assert f"{CAMPAIGN}/gold/bird-tags/test/concepts.csv has no column ID, CUIs" in out


def test_manual_concepts_are_required_only_when_the_task_scores_them(campaign_file, store, capsys, tmp_path):
    stage_good(store)
    with_manual = campaign_file.read_text().replace("metrics: [concept_f1]", "metrics: [concept_f1, concept_f1_manual]")
    other = tmp_path / "manual.yaml"
    other.write_text(with_manual)
    code, out = check(other, store, capsys, "--task", "bird-tags", "--split", "test")
    assert code == 1
    assert f"{CAMPAIGN}/gold/bird-tags/test/concepts_manual.csv: missing; stage concepts_manual.csv: csv with ID, CUIs (needed by concept_f1_manual)" in out


@pytest.mark.parametrize("arguments", [["--task", "no-such-task"], []])
def test_usage_errors_exit_2(campaign_file, store, capsys, tmp_path, arguments):
    if arguments:
        code, out = check(campaign_file, store, capsys, *arguments)
        assert code == 2 and "no task no-such-task" in out
    else:
        broken = tmp_path / "broken.yaml"
        broken.write_text("id: [\n")
        assert main(["check-staging", str(broken), "--endpoint", store.settings.endpoint_url]) == 2


def test_a_gold_object_whose_name_leaves_the_folder_is_refused_by_name(campaign_file, store, capsys, tmp_path):
    stage_good(store)
    prefix = f"{CAMPAIGN}/gold/bird-tags/test/"
    store.put_bytes(prefix + "../../../../../escape.csv", TAG_GOLD)  # joined to a temporary folder, it would land outside it
    code, out = check(campaign_file, store, capsys)
    assert code == 1
    assert f"gold object '{prefix}../../../../../escape.csv' has an unsafe name; rename it" in out
    assert "bird-quiz/test: OK" in out
