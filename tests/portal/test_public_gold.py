"""The submission check validates with the public test inputs only, and still gives every demo run
of the eleven ImageCLEF 2025 tasks the verdict the real gold gives it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from include.campaign.config import load_campaign
from include.campaign.submission_check import input_columns, public_gold
from include.campaign.validation import validate_run
from include.campaign.validation.gold import gold_entry
from include.campaign.validation.schema import run_schema

CAMPAIGN_FILE = Path(__file__).resolve().parents[2] / "include" / "campaigns" / "imageclef2025.yaml"
TASKS = [task.id for task in load_campaign(CAMPAIGN_FILE).tasks]


@pytest.fixture(scope="module")
def demo():
    from devtools.demo import build_demo

    campaign = load_campaign(CAMPAIGN_FILE)
    return campaign, build_demo(campaign, seed=2025)


@pytest.mark.parametrize("task_id", TASKS)
def test_public_inputs_give_the_verdicts_of_the_real_gold_and_hide_the_answers(task_id, demo, tmp_path):
    from devtools.demo import write_tree

    campaign, data = demo
    run_format = campaign.task(task_id).run_format
    folder = write_tree(data.gold[task_id], tmp_path / "gold")
    real = gold_entry(run_format, folder)
    public = public_gold(run_format, real)
    for number, run in enumerate(data.runs[task_id]):
        path = tmp_path / f"run-{number}"
        path.write_bytes(run.data)
        expected = validate_run(run_format, path, folder).report["verdict"]
        assert validate_run(run_format, path, public).report["verdict"] == expected, f"{task_id} {run.team}/{run.run_name} ({run.role})"
    _assert_no_answers(run_format, real.tables, public.tables)


def _assert_no_answers(run_format, real, public):
    schema = run_schema(run_format)
    inputs = input_columns(schema)
    vocabularies = {(f.allowed_from_gold.key, f.allowed_from_gold.column) for f in schema.fields if f.allowed_from_gold}
    for spec in schema.gold.files:
        before, after = real[spec.key], public[spec.key]
        assert len(before) == len(after)
        for column in before.columns:
            if spec.public or column in inputs.get(spec.key, set()):
                assert before[column].map(repr).tolist() == after[column].map(repr).tolist(), (spec.key, column)
            elif column == "mask":
                assert all(not mask.any() and mask.shape == np.shape(old) for mask, old in zip(after[column], before[column]))
            elif (spec.key, column) in vocabularies:
                values = sorted(set(map(str, before[column].dropna())))
                assert after[column].tolist() == [values[i % len(values)] for i in range(len(after))]
            else:
                assert {repr(v) for v in after[column]} <= {"''", "[]", "0", "np.int64(0)", "False"}, (spec.key, column, set(after[column].map(repr)))
