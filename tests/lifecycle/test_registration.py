"""Registration against the real moto S3 server and aiosmtpd: intake, rejections, team ids, agreements, closing."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json

import pytest

from include.campaign.registration import RegistrationError, announce_opening, approved_teams, close, decide_agreement, intake
from tests.lifecycle.conftest import (
    ALPHA_ORGANIZER,
    ANNOUNCE_LIST,
    ORGANIZER,
    bucket_state,
    context_with,
    make_campaign,
    now_utc,
    register,
    registration,
    submit,
    upload_agreement,
)


def test_a_valid_registration_is_recorded_confirmed_and_leaves_the_inbox(ctx, store, mailbox):
    agreement = upload_agreement(ctx, "apfel.pdf")
    key = submit(ctx, "apfel.json", registration("Team  Äpfel", "Lead@Apfel.example.org", ["beta", "alpha"], {"alpha": agreement}))
    raw = store.get_bytes(key)

    outcome = intake(ctx)

    assert [item["team_id"] for item in outcome["accepted"]] == ["team-apfel"] and outcome["rejected"] == []
    team = store.get_json(ctx.layout.team_record("team-apfel"))
    assert team["tasks"] == ["alpha", "beta"]  # campaign order
    assert team["country"] == "FR" and team["contact_email"] == "Lead@apfel.example.org"
    assert team["agreements"] == {"alpha": "lifecycle/registrations/agreements/apfel.pdf"}
    assert store.list_keys(ctx.layout.registrations_inbox()) == []
    archived = store.list_keys(ctx.layout.registrations_accepted())
    assert len(archived) == 1 and store.get_bytes(archived[0]) == raw

    [mail] = mailbox.messages
    assert mail.recipients == ["Lead@apfel.example.org"]
    assert mail.subject == "Lifecycle Lab 2025: registration of Team  Äpfel confirmed"
    deadline = ctx.campaign.milestone_time("run_deadline", "beta").strftime("%Y-%m-%d %H:%M:%S UTC")
    assert "team-apfel" in mail.body and "Alpha detection (alpha)" in mail.body and "Beta captions (beta)" in mail.body
    assert f"run submission deadline: {deadline}" in mail.body
    assert "User agreement: received; an organizer will check it" in mail.body
    assert "curl -T" in mail.body

    before = bucket_state(store)
    again = intake(ctx)
    assert again["accepted"] == [] and again["rejected"] == [] and len(mailbox.messages) == 1
    assert bucket_state(store) == before


def test_invalid_documents_are_kept_and_answered_with_file_line_and_rule(ctx, store, mailbox):
    bad = registration("Good Name", "bad@team.example.org", ["alpha", "gamma"], country="XX", website="https://x")
    key = submit(ctx, "bad.json", bad)
    submit(ctx, "broken.json", b'{"team_name": "Broken",\n "tasks": [beta]}')

    outcome = intake(ctx)

    assert outcome["accepted"] == []
    by_key = {item["document"]: item for item in outcome["rejected"]}
    reasons = by_key[key]["reasons"]
    lines = json.dumps(bad, indent=2).splitlines()
    country_line = next(i for i, line in enumerate(lines, 1) if '"country"' in line)
    assert f"{key}, line 1: Additional properties are not allowed ('website' was unexpected); the fields are: team_name" in reasons[0]
    assert f"{key}, line {country_line}: country: 'XX' is not an ISO 3166-1 alpha-2 country code (two letters, e.g. FR, RO, CH)" in reasons
    broken = by_key[ctx.layout.registrations_inbox() + "broken.json"]
    assert broken["reasons"] == [f"{ctx.layout.registrations_inbox()}broken.json, line 2, column 12: not valid JSON: Expecting value"]
    assert broken["answered"] is None  # no readable contact: nobody to answer

    # once the schema passes, the campaign's own rules are checked
    submit(ctx, "bad-2.json", registration("Good Name", "bad@team.example.org", ["alpha", "gamma"]))
    second = intake(ctx)["rejected"][0]["reasons"]
    assert any("tasks[1]: 'gamma' is not a task of Lifecycle Lab 2025 (tasks: alpha, beta)" in r for r in second)
    assert any("task 'alpha' requires a signed user agreement" in r for r in second)

    assert store.list_keys(ctx.layout.registrations_inbox()) == []
    kept = store.list_keys(ctx.layout.registrations_rejected())
    assert len(kept) == 6  # registration.json + reason.json for each of the three documents
    reason_files = [store.get_json(k) for k in kept if k.endswith("reason.json")]
    assert sorted(r["document"] for r in reason_files) == sorted([key, ctx.layout.registrations_inbox() + "broken.json", ctx.layout.registrations_inbox() + "bad-2.json"])
    assert [m.recipients for m in mailbox.messages] == [["bad@team.example.org"], ["bad@team.example.org"]]
    body = mailbox.messages[0].body
    # The address is unconfirmed: the e-mail gives the schema's rule, never the sender's own text (issue 14).
    assert "could not accept it" in body and "country: is not an ISO 3166-1 alpha-2 country code" in body and "'XX'" not in body


def test_registrations_before_opening_or_after_closing_are_rejected_with_the_dates(ctx, store, mailbox):
    now = now_utc()
    hour = dt.timedelta(hours=1)
    dated = context_with(ctx, make_campaign(now, alpha={"registration_opens": now + hour}, beta={"registration_opens": now - 3 * hour, "registration_closes": now - hour}))
    submit(dated, "1-early.json", registration("Early Birds", "early@team.example.org", ["alpha"], {"alpha": upload_agreement(dated, "early.pdf")}))
    submit(dated, "2-late.json", registration("Late Owls", "late@team.example.org", ["beta"]))

    outcome = intake(dated)

    assert outcome["accepted"] == []
    early, late = outcome["rejected"]
    assert early["reasons"][0].startswith("registration for task alpha opens on ") and "before that" in early["reasons"][0]
    assert late["reasons"][0].startswith("registration for task beta closed on ") and "after that" in late["reasons"][0]
    assert store.list_keys(dated.layout.registrations_teams()) == []
    assert [m.recipients[0] for m in mailbox.messages] == ["early@team.example.org", "late@team.example.org"]
    assert "registration for task beta closed on" in mailbox.messages[1].body


def test_a_registration_for_an_open_and_a_closed_task_registers_the_open_one(ctx, store, mailbox):
    now = now_utc()
    dated = context_with(ctx, make_campaign(now, beta={"registration_closes": now - dt.timedelta(hours=1)}))
    agreement = upload_agreement(dated, "mixed.pdf")
    submit(dated, "mixed.json", registration("Mixed", "mixed@team.example.org", ["alpha", "beta"], {"alpha": agreement}))
    [accepted] = intake(dated)["accepted"]
    assert accepted["tasks"] == ["alpha"] and list(accepted["refused_tasks"]) == ["beta"]
    assert store.get_json(dated.layout.team_record("mixed"))["tasks"] == ["alpha"]
    assert "beta: registration for task beta closed on" in mailbox.messages[0].body


def test_team_ids_are_stable_one_contact_merges_another_contact_gets_a_suffix(ctx, store, mailbox):
    submit(ctx, "1.json", registration("Vision Lab", "a@vision.example.org", ["beta"]))
    submit(ctx, "2.json", registration("  vision   LAB ", "b@elsewhere.example.org", ["beta"]))
    first = intake(ctx)
    submit(ctx, "3.json", registration("VISION lab", "A@vision.example.org", ["alpha"], {"alpha": upload_agreement(ctx, "vision.pdf")}))
    second = intake(ctx)

    assert [a["team_id"] for a in first["accepted"]] == ["vision-lab", "vision-lab-2"]
    assert [a["team_id"] for a in second["accepted"]] == ["vision-lab"]
    merged = store.get_json(ctx.layout.team_record("vision-lab"))
    assert merged["tasks"] == ["alpha", "beta"] and merged["team_name"] == "Vision Lab"
    assert [r["tasks"] for r in merged["registrations"]] == [["beta"], ["alpha"]]
    assert store.get_json(ctx.layout.team_record("vision-lab-2"))["contact_email"] == "b@elsewhere.example.org"
    assert len(mailbox.messages) == 3


def test_an_agreement_decision_gates_the_data_and_records_who_decided(ctx, store, mailbox):
    team_id = register(ctx, "Careful", "careful@team.example.org", ["alpha", "beta"])
    assert approved_teams(ctx, "alpha") == [] and [t["team_id"] for t in approved_teams(ctx, "beta")] == [team_id]
    decided_at = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.timezone.utc)
    clocked = context_with(ctx, ctx.campaign)
    clocked.clock = lambda: decided_at

    result = decide_agreement(clocked, team_id, "alpha", True, "organizer-ana", "signed by the PI")

    record = store.get_json(ctx.layout.approval_record(team_id, "alpha"))
    assert (record["approved"], record["decided_by"], record["note"], record["decided_at"]) == (True, "organizer-ana", "signed by the PI", "2025-03-01T09:30:00+00:00")
    assert record["agreement"] == "lifecycle/registrations/agreements/careful-alpha.pdf"
    assert result["approved"] and [t["team_id"] for t in approved_teams(ctx, "alpha")] == [team_id]
    assert mailbox.messages[-1].subject == "Lifecycle Lab 2025: your user agreement for alpha is approved"
    count, before = len(mailbox.messages), bucket_state(store)
    decide_agreement(ctx, team_id, "alpha", True, "organizer-ana", "signed by the PI")  # a re-run
    assert len(mailbox.messages) == count and bucket_state(store) == before

    decide_agreement(ctx, team_id, "alpha", False, "organizer-bob", "wrong form")
    assert approved_teams(ctx, "alpha") == []
    assert store.get_json(ctx.layout.approval_record(team_id, "alpha"))["history"][0]["decided_by"] == "organizer-ana"
    with pytest.raises(RegistrationError, match="no team 'nobody' in lifecycle; registered teams: careful"):
        decide_agreement(ctx, "nobody", "alpha", True, "organizer-ana", "")
    with pytest.raises(RegistrationError, match="task beta needs no signed agreement"):
        decide_agreement(ctx, team_id, "beta", True, "organizer-ana", "")


def test_closing_freezes_the_team_list_and_mails_the_organizers_a_summary(ctx, store, mailbox):
    register(ctx, "Zeta Team", "zeta@team.example.org", ["beta"])
    register(ctx, "Alpha Team", "alpha@team.example.org", ["alpha", "beta"])
    submit(ctx, "last.json", registration("Last Minute", "last@team.example.org", ["beta"]))  # taken in by the final intake
    mailbox.clear()

    result = close(ctx, ["alpha", "beta"])

    assert result["final_intake"] == {"accepted": 1, "rejected": 0}
    data = store.get_bytes(result["snapshot_key"])
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    assert store.get_bytes(result["snapshot_key"] + ".sha256").decode().split() == [result["sha256"], result["snapshot_key"].rsplit("/", 1)[1]]
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [(r["team_id"], r["task"]) for r in rows] == [("alpha-team", "alpha"), ("alpha-team", "beta"), ("last-minute", "beta"), ("zeta-team", "beta")]
    assert result["teams_per_task"] == {"alpha": 1, "beta": 3}
    summaries = {m.recipients[0]: m for m in mailbox.messages if m.subject.startswith("Lifecycle Lab 2025: registration closed")}
    assert set(summaries) == {ORGANIZER, ALPHA_ORGANIZER}
    body = summaries[ORGANIZER].body
    assert "Alpha detection (alpha): 1 team(s)" in body and "Beta captions (beta): 3 team(s)" in body
    assert "user agreements: 0 approved, 1 awaiting a decision, 0 refused" in body

    count, before = len(mailbox.messages), bucket_state(store)
    assert close(ctx, ["alpha", "beta"])["sha256"] == result["sha256"]
    assert len(mailbox.messages) == count and bucket_state(store) == before


def test_the_opening_is_announced_once_to_the_list_and_the_organizers(ctx, mailbox):
    result = announce_opening(ctx, ["alpha", "beta"])
    assert result["recipients"] == [ANNOUNCE_LIST, ORGANIZER, ALPHA_ORGANIZER]
    assert sorted(m.recipients[0] for m in mailbox.messages) == sorted(result["recipients"])
    body = mailbox.messages[0].body
    assert "Alpha detection (task id: alpha)" in body and "signed user agreement" in body and "registration closes:" in body
    announce_opening(ctx, ["alpha", "beta"])
    assert len(mailbox.messages) == 3


def test_with_the_smtp_server_down_a_registration_waits_in_the_inbox_and_is_confirmed_once_later(ctx, store, mailbox):
    from include.campaign.mail import SmtpSettings
    from include.campaign.teams import DeliveryError
    from devtools.devstack import free_port

    submit(ctx, "patient.json", registration("Patient Team", "patient@team.example.org", ["beta"]))
    down = context_with(ctx, ctx.campaign, SmtpSettings(host="127.0.0.1", port=free_port(), timeout=2, attempts=2, backoff_seconds=0.05))

    with pytest.raises(DeliveryError, match=r"registration intake: 1 e-mail\(s\) not sent \(0 sent\)"):
        intake(down)
    assert len(store.list_keys(ctx.layout.registrations_inbox())) == 1  # kept until it is answered
    assert store.exists(ctx.layout.team_record("patient-team"))

    assert [a["team_id"] for a in intake(ctx)["accepted"]] == ["patient-team"]
    assert intake(ctx)["accepted"] == []
    assert [m.subject for m in mailbox.messages] == ["Lifecycle Lab 2025: registration of Patient Team confirmed"]
    assert len(store.get_json(ctx.layout.team_record("patient-team"))["registrations"]) == 1
