"""The demo data is deterministic, small, complete, and laid out as the contract and schemas say."""
from __future__ import annotations

import hashlib
import io
import re
from collections import Counter

import numpy as np
import pytest
import yaml

from devtools.demo import AFTER_DEV_RELEASE, AGREEMENT_NOT_APPROVED, INVALID, LATE, build_demo
from include.schemas import SCHEMA_DIR, load_schema

from .conftest import SEED

MEGABYTE = 1024 * 1024


# --- determinism and size ------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_bytes(campaign, demo):
    again = build_demo(campaign, seed=SEED)
    assert again.all_files() == demo.all_files()
    assert again.registrations == demo.registrations
    assert again.manifests == demo.manifests
    assert again.fingerprint() == demo.fingerprint()


def test_another_seed_gives_other_data(campaign, demo):
    other = build_demo(campaign, seed=SEED + 1)
    assert other.fingerprint() != demo.fingerprint()
    for task in campaign.tasks:
        assert other.gold[task.id] != demo.gold[task.id], f"{task.id}: the gold does not depend on the seed"


def test_the_whole_demo_is_small(demo):
    sizes = [len(data) for _, data in demo.all_files()]
    print(f"demo data: {len(sizes)} files, {sum(sizes) / MEGABYTE:.2f} MB in all, largest {max(sizes) / 1024:.1f} KB")
    assert sum(sizes) < 20 * MEGABYTE
    assert max(sizes) < 256 * 1024


# --- staged data, manifests, gold ----------------------------------------------------------------


def test_every_task_has_both_splits_gold_and_runs(campaign, demo):
    task_ids = {task.id for task in campaign.tasks}
    assert set(demo.staging) == {(task, split) for task in task_ids for split in ("dev", "test")}
    assert set(demo.manifests) == set(demo.staging)
    assert set(demo.gold) == task_ids
    assert set(demo.runs) == task_ids
    for key, files in demo.staging.items():
        assert files, f"{key}: nothing staged"


def test_manifests_list_every_staged_file_with_its_checksum(demo):
    for (task, split), files in demo.staging.items():
        entries = demo.manifests[(task, split)]["files"]
        assert [entry["path"] for entry in entries] == sorted(files)
        for entry in entries:
            data = files[entry["path"]]
            assert entry["sha256"] == hashlib.sha256(data).hexdigest()
            assert entry["size"] == len(data)
            assert set(entry) == {"path", "sha256", "size", "ground_truth"}


def test_one_ground_truth_file_per_development_split_and_none_in_test(demo):
    for (task, split), manifest in demo.manifests.items():
        marked = [entry["path"] for entry in manifest["files"] if entry["ground_truth"]]
        if split == "test":
            assert marked == [], f"{task}: test split marks {marked} as ground truth"
            continue
        assert len(marked) == 1, f"{task}: dev marks {marked}"
        # It must look like what it is: a copy of one of the task's test gold files.
        assert demo.staging[(task, "dev")][marked[0]] in demo.gold[task].values()


def test_no_test_gold_file_is_staged_unmarked(demo):
    for (task, split), files in demo.staging.items():
        unmarked = {entry["path"] for entry in demo.manifests[(task, split)]["files"] if not entry["ground_truth"]}
        gold = set(demo.gold[task].values())
        leaked = [path for path in unmarked if files[path] in gold and not _is_public_list(path)]
        assert leaked == [], f"{task}/{split}: gold bytes staged without the ground-truth mark: {leaked}"


def _is_public_list(path: str) -> bool:
    # Lists participants must have to run the task at all (the prompts to draw, the image collection).
    return path.rsplit("/", 1)[-1] in {"prompts.csv", "images.txt"}


def test_gold_files_are_the_ones_the_schema_names(campaign, demo):
    for task in campaign.tasks:
        expected = load_schema(task.run_format)["gold"]["files"]
        gold = demo.gold[task.id]
        named = {entry["file"] for entry in expected if "file" in entry}
        folders = [entry for entry in expected if "folder" in entry]
        assert named <= set(gold), f"{task.id}: gold lacks {named - set(gold)}"
        for entry in folders:
            members = [path for path in gold if path.startswith(entry["folder"] + "/")]
            assert members, f"{task.id}: gold folder {entry['folder']}/ is empty"
            for path in members:
                assert re.fullmatch(entry["name_pattern"], path.split("/", 1)[1]), f"{task.id}: {path} misnamed"
        stray = [p for p in gold if p not in named and not any(p.startswith(e["folder"] + "/") for e in folders)]
        assert stray == [], f"{task.id}: gold files the schema does not name: {stray}"


def test_images_are_real_pngs_and_masks_binary_tiffs(demo):
    import tifffile
    from PIL import Image

    for name, data in demo.all_files():
        if name.endswith(".png"):
            with Image.open(io.BytesIO(data)) as picture:
                assert picture.format == "PNG"
                picture.verify()
        elif name.endswith(".tiff"):
            mask = tifffile.imread(io.BytesIO(data))
            assert mask.ndim == 2, name
            # 0/1 as the organizers stage gold and score runs (their scorer counts pixels equal to 1)
            assert set(np.unique(mask.astype(np.uint8))) <= {0, 1}, name
            assert mask.any(), f"{name}: an empty mask"


def test_tasks_with_images_stage_pngs_and_segmentation_has_tiff_masks(campaign, demo):
    for task in campaign.tasks:
        if task.run_format == "topicto-json":
            continue  # text to pictogram terms: no images in the task
        assert any(path.endswith(".png") for path in demo.staging[(task.id, "test")] | demo.staging[(task.id, "dev")]), task.id
    segmentation = [t.id for t in campaign.tasks if t.run_format == "magic-masks-zip"]
    for task_id in segmentation:
        assert any(path.endswith(".tiff") for path in demo.gold[task_id])
        assert any(path.endswith(".tiff") for path in demo.staging[(task_id, "dev")])


# --- registrations -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registration_schema():
    with open(SCHEMA_DIR / "_registration.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_twelve_teams_with_one_late_one_invalid_and_two_unapproved(demo):
    names = [registration.team_name for registration in demo.registrations]
    assert len(names) == len(set(names)) == 12
    flags = Counter(flag for registration in demo.registrations for flag in registration.flags)
    assert flags[LATE] == 1 and flags[INVALID] == 1 and flags[AGREEMENT_NOT_APPROVED] == 2
    assert flags[AFTER_DEV_RELEASE] == 1
    for name, document, _ in demo.registrations:
        assert document["team_name"] == name


def test_registration_documents_follow_the_registration_schema(campaign, demo, registration_schema):
    import jsonschema

    task_ids = {task.id for task in campaign.tasks}
    validator = jsonschema.Draft202012Validator(registration_schema)
    for name, document, flags in demo.registrations:
        errors = list(validator.iter_errors(document))
        if INVALID in flags:
            assert [e.message for e in errors] == ["'contact_email' is a required property"], name
            continue
        assert errors == [], f"{name}: {[e.message for e in errors]}"
        assert document["contact_email"].endswith("@example.org")
        assert set(document["tasks"]) <= task_ids


def test_every_agreement_task_names_a_signed_pdf_that_the_demo_holds(campaign, demo):
    for name, document, flags in demo.registrations:
        needing = {t for t in document["tasks"] if campaign.task(t).requires_agreement}
        assert set(document.get("agreements", {})) == needing, name
        for key in document.get("agreements", {}).values():
            pdf = demo.agreements[key]
            assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
            assert name.encode() in pdf


def test_the_unapproved_teams_need_an_agreement_for_every_task(campaign, demo):
    for _, document, flags in demo.registrations:
        if AGREEMENT_NOT_APPROVED in flags:
            assert document["tasks"] and all(campaign.task(t).requires_agreement for t in document["tasks"])


# --- runs ----------------------------------------------------------------------------------------


def test_runs_come_only_from_teams_entitled_to_the_task(demo):
    entitled = {
        task: {name for name, document, flags in demo.registrations if task in document["tasks"] and not flags - {AFTER_DEV_RELEASE}}
        for task in demo.runs
    }
    for task, runs in demo.runs.items():
        assert {run.team for run in runs} <= entitled[task], task
        names = [(run.team, run.run_name) for run in runs]
        assert len(names) == len(set(names)), f"{task}: a run name used twice by one team"
        assert all(run.task == task for run in runs)


def test_each_task_has_one_invalid_run_one_late_run_a_perfect_run_and_a_tie(demo):
    for task, runs in demo.runs.items():
        invalid = [run for run in runs if not run.expect_valid]
        late = [run for run in runs if run.late]
        assert len(invalid) == 1 and invalid[0].broken_rule, task
        assert len(late) == 1 and late[0].expect_valid, task
        roles = Counter(run.role for run in runs)
        assert roles["perfect"] == 1 and roles["good"] == 1 and roles["tie"] == 1, task
        good, tie = (next(run for run in runs if run.role == role) for role in ("good", "tie"))
        assert good.team != tie.team and good.data != tie.data


def test_exactly_one_team_goes_over_its_run_limit_in_one_task(campaign, demo):
    over = []
    for task, runs in demo.runs.items():
        per_team = Counter(run.team for run in runs)
        allowed = campaign.task(task).runs_allowed
        for team, count in per_team.items():
            if count > allowed:
                over.append((task, team, count - allowed))
        dropped = [run for run in runs if run.over_limit]
        if dropped:
            assert len(dropped) == 1
            first_of_team = next(run for run in runs if run.team == dropped[0].team)
            assert first_of_team is dropped[0], "the dropped run must be the team's earliest upload"
    assert len(over) == 1 and over[0][2] == 1, over
    assert over[0][0] == min(campaign.tasks, key=lambda t: t.runs_allowed).id


def smaller_campaign(campaign_file, task_ids: list[str], campaign_id: str):
    from include.campaign.config import parse_campaign

    with open(campaign_file, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    data["id"] = campaign_id
    data["tasks"] = [task for task in data["tasks"] if task["id"] in task_ids]
    return parse_campaign(yaml.safe_dump(data, allow_unicode=True), f"<{campaign_id}>")


def test_a_smaller_campaign_with_another_id_gets_its_own_demo():
    from .conftest import CAMPAIGN_FILE

    small = smaller_campaign(CAMPAIGN_FILE, ["gans-detection", "topicto"], "democlef")
    demo = build_demo(small, seed=SEED)
    assert demo.campaign_id == "democlef"
    assert set(demo.gold) == set(demo.runs) == {"gans-detection", "topicto"}
    for task, runs in demo.runs.items():
        assert len({run.team for run in runs}) == 6, task
        assert sum(not run.expect_valid for run in runs) == 1 and sum(run.late for run in runs) == 1
    flags = Counter(flag for registration in demo.registrations for flag in registration.flags)
    assert flags[LATE] == flags[INVALID] == 1
    assert flags[AGREEMENT_NOT_APPROVED] == 2  # gans-detection needs an agreement
    registered = {t for _, document, _ in demo.registrations for t in document["tasks"]}
    assert registered <= {"gans-detection", "topicto"}
