"""A zip with 100,000 entries is checked in one pass (the duplicate-name check was quadratic: 107 s of CPU)."""
from __future__ import annotations

import resource
import zipfile
import warnings

import pytest

from include.campaign.validation.findings import Findings, StopValidation
from include.campaign.validation.limits import RunLimits
from include.campaign.validation.schema import run_schema
from include.campaign.validation.source import RunSource

ENTRIES = 100_000
# A guard against the quadratic check coming back, not a speed measurement (benchmarks/zip_members.py
# prints the figures): the linear check needs about 1 s of CPU here, the quadratic one 107 s.
CPU_BOUND_SECONDS = 30


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@pytest.fixture(scope="module")
def crowded_zip(tmp_path_factory):
    path = tmp_path_factory.mktemp("crowded") / "images.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name we add on purpose
        for index in range(ENTRIES - 2):
            archive.writestr(f"prompt{index % 9000:04d}_img{index // 9000:04d}.png", b"")
        archive.writestr("prompt0042_img0003.png", b"")  # a second member of the same name
        archive.writestr("prompt0042_img0003.png", b"")  # and a third
    return path


def test_duplicate_names_among_100000_entries_are_found_in_one_pass(crowded_zip):
    findings = Findings()
    source = RunSource(crowded_zip, RunLimits(), findings)
    started = _cpu_seconds()
    with pytest.raises(StopValidation):
        source.open_archive(run_schema("vqa-gi-images-zip"))
    spent = _cpu_seconds() - started
    source.close()
    assert findings.rules() == ["container.duplicate-member"]
    report = [example.as_dict() for finding in findings for example in finding.examples]
    assert [entry["member"] for entry in report] == ["prompt0042_img0003.png"]
    assert spent < CPU_BOUND_SECONDS, f"checking {ENTRIES} entries took {spent:.1f} s of CPU"
