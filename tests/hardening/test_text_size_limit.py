"""A text run is parsed whole (about 10x its size in memory), so its text is bounded by ``max_text_bytes``.

Before, a zipped 100 MiB CSV member peaked at 1.3 GB and the 2 GiB unpacked limit let one run reach
about 21 GB. Both hostile runs are made here, just over the default limit, and refused before a byte
of their text is parsed.
"""
from __future__ import annotations

import random
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))

from validation_fixtures import write_gold  # noqa: E402

from include.campaign.config import Campaign
from include.campaign.validation import RunLimits, validate_run

LIMIT = 32 * 1024 * 1024  # the default max_text_bytes (checked below)


def concept_lines(size: int) -> bytes:
    """A plausible concept-detection CSV of ``size`` bytes (random CUIs: it compresses like a real run)."""
    rng = random.Random(11)
    lines, total, number = [b"ID,CUIs\n"], 8, 0
    while total < size:
        number += 1
        line = f"ImageCLEFmedical_Caption_2025_test_{number:07d},{';'.join(f'C{rng.randrange(10**7):07d}' for _ in range(8))}\n".encode()
        lines.append(line)
        total += len(line)
    return b"".join(lines)


@pytest.fixture(scope="module")
def gold(tmp_path_factory):
    return {name: write_gold(name, tmp_path_factory.mktemp(name)) for name in ("caption-concepts-csv", "gans-detection-csv")}


def test_a_zipped_csv_member_over_the_text_limit_is_refused_before_it_is_parsed(tmp_path, gold):
    run = tmp_path / "run.zip"
    with zipfile.ZipFile(run, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("submission.csv", concept_lines(LIMIT + 4096))
    assert run.stat().st_size < RunLimits().max_bytes

    outcome = validate_run("caption-concepts-csv", run, gold["caption-concepts-csv"])

    assert not outcome.valid
    rules = [finding["rule"] for finding in outcome.report["rules_broken"]]
    assert rules == ["file.text-size-limit"], outcome.text
    assert f"over this task's limit of {LIMIT} bytes" in outcome.text and "submission.csv" in outcome.text


def test_a_bare_csv_over_the_text_limit_is_refused_from_its_size(tmp_path, gold):
    run = tmp_path / "labels.csv"
    with run.open("wb") as handle:  # sparse: refused from its size, never read
        handle.truncate(LIMIT + 1)

    outcome = validate_run("gans-detection-csv", run, gold["gans-detection-csv"])

    assert [finding["rule"] for finding in outcome.report["rules_broken"]] == ["file.text-size-limit"], outcome.text


def test_the_limit_is_a_campaign_setting_per_task():
    from tests.lifecycle.conftest import make_campaign, now_utc

    data = make_campaign(now_utc()).model_dump()
    data["tasks"][1]["run_limits"] = {"max_text_bytes": 1024}
    campaign = Campaign.model_validate(data)
    assert campaign.task_run_limits("beta").max_text_bytes == 1024
    assert campaign.task_run_limits("alpha").max_text_bytes == LIMIT == RunLimits().max_text_bytes
