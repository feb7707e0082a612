"""Issue 19's smaller items on the lifecycle campaign: rejection reasons, the closing summary, invalid runs' results lines."""
from __future__ import annotations

import json

from include.campaign.registration import close, intake, read_registration
from tests.lifecycle.conftest import ORGANIZER, register, registration, submit


def test_an_unknown_task_is_among_the_reasons_even_when_other_fields_are_wrong(ctx):
    document = registration("Mixed Team", "mixed@team.example.org", ["beta", "gamma-nonexistent"], country="Narnia")
    reading = read_registration(ctx, "inbox/mixed.json", json.dumps(document, indent=2).encode())
    text = "\n".join(reading.problems)
    assert "country" in text
    assert "tasks[1]: 'gamma-nonexistent' is not a task of Lifecycle Lab 2025" in text


def test_the_closing_summary_counts_rejected_registrations(ctx, mailbox):
    register(ctx, "Open Team", "open@team.example.org", ["beta"])
    submit(ctx, "bad.json", registration("X", "bad@team.example.org", ["beta"]))  # a team name of one character
    intake(ctx)
    mailbox.clear()
    close(ctx, ["alpha", "beta"])
    [summary] = [m for m in mailbox.messages if m.recipients == [ORGANIZER]]
    assert "Rejected registrations: 1 (each under lifecycle/registrations/rejected/ with its reasons)" in summary.body


def test_results_lines_of_an_invalid_run_name_file_line_and_rule(ctx):
    from include.campaign.results import _report_lines
    from include.campaign.evaluation import run_prefix

    report = {"verdict": "invalid", "rules_broken": [
        {"rule": "label.allowed", "description": "label is 0 or 1", "count": 2,
         "examples": [{"file": "run.csv", "line": 3, "message": "label '7' is not 0 or 1"}, {"file": "run.csv", "line": 9, "message": "label 'x' is not 0 or 1"}]},
        {"rule": "id.every", "description": "every test id once", "count": 1, "examples": [{"file": "run.csv", "line": None, "message": "id img4 is missing"}]}]}
    ctx.store.put_json(run_prefix(ctx, "alpha", "v0001", "team-a", "run-01") + "report.json", report)
    lines = _report_lines(ctx, "alpha", {"version": "v0002"}, "team-a", {"run": "run-01", "status": "invalid"}, {"scored_in": "v0001"})
    assert lines == ["run.csv line 3: label '7' is not 0 or 1 [label.allowed]", "run.csv line 9: label 'x' is not 0 or 1 [label.allowed]",
                     "run.csv: id img4 is missing [id.every]"]
    assert _report_lines(ctx, "alpha", {"version": "v0002"}, "team-a", {"run": "run-01", "status": "ranked"}, {}) == []
