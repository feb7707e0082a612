"""``load_demo`` puts staging, manifests, gold and agreements into a real S3 (moto server on loopback)
under the layout's keys, byte for byte, and a second load writes nothing."""
from __future__ import annotations

import os
import uuid

import pytest

from include.campaign.context import CampaignContext
from include.campaign.mail import SmtpSettings
from include.campaign.store import ObjectStore, S3Settings
from devtools.demo import load_demo


@pytest.fixture(scope="module")
def loaded(campaign, demo, s3_endpoint):
    """A fresh versioned bucket with the demo loaded once, and load_demo's summary.

    Module-scoped (conftest's ``store`` is per test) because one load is some four hundred writes.
    No mail is sent here, so the SMTP settings point nowhere.
    """
    settings = S3Settings(bucket=f"clef-demo-{uuid.uuid4().hex[:12]}", endpoint_url=s3_endpoint,
                          access_key_id=os.environ["AWS_ACCESS_KEY_ID"], secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"])
    store = ObjectStore(settings)
    store.ensure_bucket(versioning=True)
    ctx = CampaignContext(campaign, store, SmtpSettings(host="127.0.0.1", port=9))
    return ctx, load_demo(ctx, demo)


def expected_objects(ctx, demo) -> dict[str, bytes | None]:
    """Every key load_demo must write; manifests are checked by content, so their bytes are None."""
    layout = ctx.layout
    expected: dict[str, bytes | None] = {}
    for (task, split), files in demo.staging.items():
        expected.update({layout.staging(task, split) + path: data for path, data in files.items()})
        expected[layout.staging_manifest(task, split)] = None
    for task, files in demo.gold.items():
        expected.update({layout.gold(task, "test") + path: data for path, data in files.items()})
    for relative_key, data in demo.agreements.items():
        expected[f"{ctx.campaign.id}/{relative_key}"] = data
    return expected


def test_load_writes_every_object_under_its_layout_key(loaded, demo):
    ctx, summary = loaded
    expected = expected_objects(ctx, demo)
    stored = {info.key: info for info in ctx.store.list_objects(f"{ctx.campaign.id}/")}
    assert set(stored) == set(expected)
    assert summary["objects"] == summary["written"] == len(expected)
    for key, data in expected.items():
        if data is not None:
            assert stored[key].size == len(data), key
    # Bytes, not only sizes, for one file of each kind.
    for suffix in (".png", ".tiff", ".csv", ".json", ".txt", ".pdf"):
        key = next(k for k, d in expected.items() if d is not None and k.endswith(suffix))
        assert ctx.store.get_bytes(key) == expected[key], key


def test_manifests_in_the_store_match_the_staged_objects(loaded, demo):
    ctx, _ = loaded
    for (task, split) in demo.staging:
        manifest = ctx.store.get_json(ctx.layout.staging_manifest(task, split))
        assert manifest == demo.manifests[(task, split)]
        prefix = ctx.layout.staging(task, split)
        staged = {info.key: info.size for info in ctx.store.list_objects(prefix)}
        assert {key for key in staged if not key.endswith("/MANIFEST.json")} == {prefix + e["path"] for e in manifest["files"]}
        for entry in manifest["files"]:
            assert staged[prefix + entry["path"]] == entry["size"]


def test_gold_goes_only_under_gold_and_nothing_is_released_or_submitted(loaded):
    ctx, _ = loaded
    campaign = ctx.campaign.id
    gold_keys = ctx.store.list_keys(f"{campaign}/gold/")
    assert gold_keys and all(key.split("/")[3] == "test" for key in gold_keys)
    for prefix in ("releases/", "registrations/inbox/", "registrations/teams/", "submissions/"):
        assert ctx.store.list_keys(f"{campaign}/{prefix}") == [], prefix  # the simulation does those


def test_loading_again_writes_nothing_new(loaded, demo):
    ctx, _ = loaded
    versions_before = len(ctx.store.list_versions(f"{ctx.campaign.id}/"))
    again = load_demo(ctx, demo)
    assert again["written"] == 0 and again["unchanged"] == again["objects"]
    assert len(ctx.store.list_versions(f"{ctx.campaign.id}/")) == versions_before


def test_a_changed_file_is_written_again(loaded, demo):
    ctx, _ = loaded
    (task, split), files = next(iter(demo.staging.items()))
    path = sorted(files)[0]
    key = ctx.layout.staging(task, split) + path
    ctx.store.put_bytes(key, b"tampered")
    again = load_demo(ctx, demo)
    assert again["written"] == 1
    assert ctx.store.get_bytes(key) == files[path]


def test_demo_built_for_another_campaign_is_refused(loaded, demo):
    ctx, _ = loaded
    with pytest.raises(ValueError, match="another2025"):
        load_demo(ctx, type(demo)(campaign_id="another2025", seed=demo.seed))
