"""Every demo run flagged valid passes the real validator against the generated gold; every run
flagged invalid fails it, for exactly the one rule it was made to break."""
from __future__ import annotations

import pytest

from .conftest import campaign_task_ids


@pytest.mark.parametrize("task_id", campaign_task_ids())
def test_runs_get_the_verdict_they_were_made_for(task_id, validated_runs):
    outcomes = validated_runs(task_id)
    assert outcomes, f"{task_id}: no runs"
    for run, outcome in outcomes:
        where = f"{task_id} {run.team}/{run.run_name} ({run.role})"
        if run.expect_valid:
            assert outcome.report["verdict"] == "valid", f"{where} was refused:\n{outcome.text}"
            assert outcome.run is not None and len(outcome.run) > 0
        else:
            assert outcome.report["verdict"] == "invalid", f"{where} should break: {run.broken_rule}"
            assert outcome.run is None
            assert outcome.report["counts"]["rules_broken"] == 1, f"{where} breaks more than its one rule:\n{outcome.text}"


@pytest.mark.parametrize("task_id", campaign_task_ids())
def test_valid_runs_cover_the_test_set_or_one_language_of_it(task_id, validated_runs):
    for run, outcome in validated_runs(task_id):
        counts = outcome.report["counts"]
        if not run.expect_valid or "ids_expected" not in counts:
            continue
        where = f"{task_id} {run.team}/{run.run_name}: {counts}"
        # For a run answering one language's part, the validator expects that part's ids only.
        assert counts["ids_covered"] == counts["ids_expected"] > 0, where
        assert counts.get("ids_unknown", 0) == 0, where
        assert ("subset" in counts) == (run.role == "weak" and task_id == "multimodal-reasoning"), where
