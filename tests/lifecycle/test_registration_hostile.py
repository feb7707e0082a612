"""Hostile registrations against the real moto S3 server and aiosmtpd (issue 11, items 1 and 6).

Each test puts one hostile input into the inbox between two ordinary registrations and checks three
things: the hostile one is refused (or set aside) with a reason naming the file, the field and the
rule; the ordinary ones around it are accepted and confirmed as usual; nothing else changed.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest

from include.campaign.registration import MAX_DOCUMENT_BYTES, RegistrationError, close, intake
from tests.lifecycle.conftest import ALPHA_ORGANIZER, ORGANIZER, bucket_state, registration, submit, upload_agreement

BEFORE = ("0-before.json", registration("Good Before", "before@team.example.org", ["beta"]))
AFTER = ("9-after.json", registration("Good After", "after@team.example.org", ["beta"]))


def _between(ctx, name: str, document: dict | bytes) -> str:
    """Submit an ordinary registration, the hostile one, another ordinary one; run the intake."""
    submit(ctx, *BEFORE)
    key = submit(ctx, name, document)
    submit(ctx, *AFTER)
    return key


def _assert_the_others_were_taken_in(ctx, store, mailbox, outcome) -> None:
    assert sorted(a["team_id"] for a in outcome["accepted"]) == ["good-after", "good-before"]
    confirmations = {m.recipients[0] for m in mailbox.messages if m.subject.endswith("confirmed")}
    assert confirmations == {"before@team.example.org", "after@team.example.org"}
    assert store.list_keys(ctx.layout.registrations_inbox()) == []
    assert sorted(k.rsplit("/", 1)[1] for k in store.list_keys(ctx.layout.registrations_teams())) == ["good-after.json", "good-before.json"]


def _reason_file(store, ctx, key: str) -> dict:
    [reason] = [store.get_json(k) for k in store.list_keys(ctx.layout.registrations_rejected()) if k.endswith("reason.json") and store.get_json(k)["document"] == key]
    return reason


# --- item 1: one document never stops the intake ----------------------------------------------------

TEXT_CASES = {
    "carriage-return": ("team_name", "Evil\rTeam", "U+000D CARRIAGE RETURN", "a control character"),
    "line-separator": ("team_name", "Evil\u2028Team", "U+2028 LINE SEPARATOR", "a line separator"),
    "paragraph-separator": ("affiliation", "Evil\u2029University", "U+2029 PARAGRAPH SEPARATOR", "a paragraph separator"),
    "next-line": ("team_name", "Evil\u0085Team", "U+0085 NEXT LINE", "a control character"),
    "vertical-tab": ("contact_name", "Eve\x0bEvil", "U+000B LINE TABULATION", "a control character"),
    "zero-width-space": ("team_name", "Good\u200bBefore", "U+200B ZERO WIDTH SPACE", "an invisible format character"),
    "bidi-override": ("affiliation", "Univ \u202eytisrevinU", "U+202E RIGHT-TO-LEFT OVERRIDE", "an invisible format character"),
    "trailing-newline": ("team_name", "Evil Team\n", "U+000A LINE FEED", "a control character"),
    "byte-order-mark-inside": ("contact_name", "Eve\ufeffEvil", "U+FEFF ZERO WIDTH NO-BREAK SPACE", "an invisible format character"),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_text_fields_refuse_control_format_and_separator_characters_and_the_others_go_on(ctx, store, mailbox, case):
    field, value, character, kind = TEXT_CASES[case]
    document = registration("Evil Team", "evil@team.example.org", ["beta"])
    document[field] = value
    key = _between(ctx, "5-hostile.json", document)

    outcome = intake(ctx)

    _assert_the_others_were_taken_in(ctx, store, mailbox, outcome)
    [rejected] = outcome["rejected"]
    line = next(i for i, text in enumerate(json.dumps(document, indent=2).splitlines(), 1) if f'"{field}"' in text)
    [reason] = rejected["reasons"]
    assert reason.startswith(f"{key}, line {line}: {field}: character ") and f" is {character}, {kind}: " in reason
    assert "control (Cc), format (Cf" in reason  # the rule itself
    assert _reason_file(store, ctx, key)["reasons"] == [reason]
    [answer] = mailbox.to("evil@team.example.org")
    assert answer.subject == "Lifecycle Lab 2025: your registration could not be accepted" and character in answer.body


def test_a_document_nested_a_thousand_levels_is_refused_by_the_reader_and_the_others_go_on(ctx, store, mailbox):
    deep = b'{"team_name": ' + b"[" * 1000 + b"]" * 1000 + b', "contact_email": "deep@team.example.org"}'
    assert len(deep) < 2100
    key = _between(ctx, "5-deep.json", deep)

    outcome = intake(ctx)

    _assert_the_others_were_taken_in(ctx, store, mailbox, outcome)
    [rejected] = outcome["rejected"]
    assert rejected["reasons"] == [
        f"{key}, line 1: arrays and objects nested more than 8 levels deep; a registration is one object of text fields, a list of tasks "
        f"and an object of agreements (the reader stops at 8 levels and 64 KiB)"
    ]
    assert rejected["answered"] is None and mailbox.to("deep@team.example.org") == []
    assert _reason_file(store, ctx, key)["reasons"] == rejected["reasons"]
    assert store.get_bytes(rejected["kept_at"] + "registration.json") == deep


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b'{"team_name": 1' + b"0" * 5000 + b"}", "not a registration the reader accepts: Exceeds the limit (4300 digits)"),
        (b'{"team_name": NaN}', "not a registration the reader accepts: NaN is not a JSON value"),
        (b'{"team_name": "One",\n "team_name": "Two"}', "line 2: field 'team_name' is given twice; give each field once"),
    ],
    ids=["5000-digit-number", "nan", "duplicate-field"],
)
def test_numbers_constants_and_duplicate_fields_are_refused_and_the_others_go_on(ctx, store, mailbox, raw, expected):
    key = _between(ctx, "5-odd.json", raw)
    outcome = intake(ctx)
    _assert_the_others_were_taken_in(ctx, store, mailbox, outcome)
    [rejected] = outcome["rejected"]
    assert len(rejected["reasons"]) == 1 and rejected["reasons"][0].startswith(key) and expected in rejected["reasons"][0]


def test_a_lone_surrogate_is_refused_not_written(ctx, store, mailbox):
    raw = json.dumps(registration("Evil Team", "evil@team.example.org", ["beta"], contact_name="Eve")).replace("Evil Team", "Evil \\ud800Team").encode()
    key = _between(ctx, "5-surrogate.json", raw)
    outcome = intake(ctx)
    _assert_the_others_were_taken_in(ctx, store, mailbox, outcome)
    [rejected] = outcome["rejected"]
    assert rejected["reasons"][0].startswith(f"{key}, line 1: team_name: character 6 is U+D800") and "a lone surrogate" in rejected["reasons"][0]


def test_an_error_nobody_foresaw_sets_the_document_aside_tells_the_organizers_and_the_others_go_on(ctx, store, mailbox):
    # A team record damaged in the store: handling the document that maps to it fails in a way no rule foresaw.
    store.put_bytes(ctx.layout.team_record("vision-lab"), b"{damaged", content_type="application/json")
    key = _between(ctx, "5-vision.json", registration("Vision Lab", "vision@team.example.org", ["beta"]))

    outcome = intake(ctx)

    assert sorted(a["team_id"] for a in outcome["accepted"]) == ["good-after", "good-before"]
    assert store.list_keys(ctx.layout.registrations_inbox()) == []
    [aside] = outcome["rejected"]
    assert aside["set_aside"] is True and aside["organizers_told"] is True
    assert aside["reasons"][0].startswith("the intake could not handle this document (JSONDecodeError: ")
    reason = _reason_file(store, ctx, key)
    assert reason["error"]["type"] == "JSONDecodeError" and any("load_team" in where for where in reason["error"]["where"])
    assert json.loads(store.get_bytes(aside["kept_at"] + "registration.json"))["team_name"] == "Vision Lab"
    [told] = mailbox.to(ORGANIZER)
    assert told.subject.startswith("Lifecycle Lab 2025: registration ") and told.subject.endswith(" needs an organizer")
    assert "JSONDecodeError" in told.body and "5-vision.json" in told.body
    assert store.get_bytes(ctx.layout.team_record("vision-lab")) == b"{damaged"  # nothing else touched

    before, count = bucket_state(store), len(mailbox.messages)
    assert intake(ctx)["rejected"] == [] and bucket_state(store) == before and len(mailbox.messages) == count


def test_an_error_after_the_team_was_recorded_names_the_record_to_check(ctx, store, mailbox):
    store.put_bytes(ctx.layout.release_record("alpha", "dev"), b"{damaged", content_type="application/json")  # a damaged release record
    key = _between(ctx, "5-alpha.json", registration("Alpha Seekers", "seekers@team.example.org", ["alpha"], {"alpha": upload_agreement(ctx, "seekers.pdf")}))

    outcome = intake(ctx)

    assert sorted(a["team_id"] for a in outcome["accepted"]) == ["good-after", "good-before"]
    [aside] = outcome["rejected"]
    assert aside["document"] == key and aside["set_aside"] is True
    assert aside["reasons"][0].endswith("it had already been recorded in the team record(s) alpha-seekers: check them")
    assert store.exists(ctx.layout.team_record("alpha-seekers")) and mailbox.to("seekers@team.example.org") == []
    assert any("alpha-seekers" in m.body for m in mailbox.to(ORGANIZER))


def test_a_document_name_with_line_breaks_is_kept_out_of_every_header(ctx, store, mailbox):
    key = _between(ctx, "5-evil\u2028Bcc: victim@example.org\u0085.json", registration("Plain Team", "plain@team.example.org", ["beta"]))
    outcome = intake(ctx)
    assert sorted(a["team_id"] for a in outcome["accepted"]) == ["good-after", "good-before", "plain-team"]
    [accepted] = [a for a in outcome["accepted"] if a["team_id"] == "plain-team"]
    assert accepted["document"] == key and store.list_keys(ctx.layout.registrations_inbox()) == []
    assert all(m.recipients != ["victim@example.org"] and "victim" not in m.subject for m in mailbox.messages)
    [folder] = {k.rsplit("/", 2)[1] for k in store.list_keys(ctx.layout.registrations_accepted()) if "evil" in k}
    assert folder.split("-", 1)[1].startswith("5-evil-Bcc-victim@example.org-")  # the id keeps only key-safe characters


def test_a_document_another_intake_took_meanwhile_is_left_to_it(ctx, store, mailbox):
    key = _between(ctx, "5-raced.json", registration("Raced Team", "raced@team.example.org", ["beta"]))

    def taken_by_the_other_intake(params, **_):
        if params.get("Key") == key:
            store.client.delete_object(Bucket=store.bucket, Key=key)

    store.client.meta.events.register("before-parameter-build.s3.GetObject", taken_by_the_other_intake)
    outcome = intake(ctx)

    _assert_the_others_were_taken_in(ctx, store, mailbox, outcome)
    assert outcome["rejected"] == [] and [g["document"] for g in outcome["gone"]] == [key]
    assert mailbox.to("raced@team.example.org") == [] and mailbox.to(ORGANIZER) == []


def test_closing_takes_in_the_last_documents_and_freezes_the_list_despite_a_hostile_one(ctx, store, mailbox):
    submit(ctx, *BEFORE)
    submit(ctx, "5-deep.json", b"[" * 1000 + b"]" * 1000)
    submit(ctx, "6-cr.json", registration("Evil\rTeam", "evil@team.example.org", ["beta"]))

    result = close(ctx, ["alpha", "beta"])

    assert result["final_intake"] == {"accepted": 1, "rejected": 2}
    rows = list(csv.DictReader(io.StringIO(store.get_bytes(result["snapshot_key"]).decode())))
    assert [(r["team_id"], r["task"]) for r in rows] == [("good-before", "beta")]
    assert {m.recipients[0] for m in mailbox.messages if "registration closed" in m.subject} == {ORGANIZER, ALPHA_ORGANIZER}


def test_upload_link_renewal_runs_per_task_even_when_the_intake_failed():
    from dags.campaign_registration import build_intake_dag
    from tests.lifecycle.conftest import make_campaign, now_utc

    dag = build_intake_dag("unused.yaml", make_campaign(now_utc()))
    renewal = dag.get_task("refresh_upload_links")
    assert renewal.trigger_rule == "all_done"  # not "all_success": a failed intake must not let links lapse
    assert renewal.upstream_task_ids == {"process_inbox"}  # after it, so the two never send the same links at once
    assert type(renewal).__name__ == "DecoratedMappedOperator"  # one task instance per campaign task
    assert [item["task_id"] for item in renewal.op_kwargs_expand_input.value["item"]] == ["alpha", "beta"]


# --- item 6: the smaller ones -------------------------------------------------------------------------


def _same_second(ctx, store, names_and_documents) -> list[str]:
    """Submit documents until the store gives them one LastModified second (it counts whole seconds)."""
    for _ in range(10):
        keys = [submit(ctx, name, document) for name, document in names_and_documents]
        if len({store.head(key).last_modified for key in keys}) == 1:
            return keys
        for key in keys:
            store.delete(key)
    raise AssertionError("could not put the documents into one second")


def test_documents_sharing_sixty_characters_in_one_second_are_both_kept(ctx, store, mailbox):
    stem = "registration-of-our-team-for-the-lifecycle-lab-2025-campaign"
    assert len(stem) == 60
    first = registration("Team One", "one@team.example.org", ["beta"])
    second = registration("Team Two", "two@team.example.org", ["beta"])
    _same_second(ctx, store, [(stem + "-one.json", first), (stem + "-two.json", second)])

    outcome = intake(ctx)

    assert sorted(a["team_id"] for a in outcome["accepted"]) == ["team-one", "team-two"]
    archived = sorted(k for k in store.list_keys(ctx.layout.registrations_accepted()) if k.endswith("registration.json"))
    assert len(archived) == 2
    assert sorted(json.loads(store.get_bytes(k))["team_name"] for k in archived) == ["Team One", "Team Two"]
    documents = [store.get_json(ctx.layout.team_record(t))["registrations"][0]["document"] for t in ("team-one", "team-two")]
    assert documents[0] != documents[1] and all(d.startswith(documents[0][:17]) for d in documents)
    assert sorted(m.recipients[0] for m in mailbox.messages) == ["one@team.example.org", "two@team.example.org"]


def test_the_frozen_team_list_escapes_spreadsheet_formulas(ctx, store, mailbox):
    hostile = registration('=HYPERLINK("http://evil.example.org","Click")', "formula@team.example.org", ["beta"],
                           affiliation="+1+cmd|' /C calc'!A0", contact_name="@SUM(A1:A9)")
    submit(ctx, "1-formula.json", hostile)
    submit(ctx, "2-minus.json", registration("-2+3 Lab", "minus@team.example.org", ["beta"]))
    submit(ctx, *AFTER)

    result = close(ctx, ["beta"])

    rows = {r["contact_email"]: r for r in csv.DictReader(io.StringIO(store.get_bytes(result["snapshot_key"]).decode()))}
    formula = rows["formula@team.example.org"]
    assert formula["team_name"] == "'" + hostile["team_name"]
    assert formula["affiliation"] == "'" + hostile["affiliation"] and formula["contact_name"] == "'@SUM(A1:A9)"
    assert rows["minus@team.example.org"]["team_name"] == "'-2+3 Lab"
    assert rows["after@team.example.org"]["team_name"] == "Good After"  # ordinary text unchanged


def test_look_alike_team_names_are_refused_and_never_take_or_merge_into_another_team(ctx, store, mailbox):
    submit(ctx, "1.json", registration("VISION LAB", "vision@lab.example.org", ["beta"]))
    submit(ctx, "2.json", registration("KOBE 2025", "kobe@lab.example.org", ["beta"]))
    submit(ctx, "3.json", registration("Team1 Lab", "one@lab.example.org", ["beta"]))
    intake(ctx)
    originals = {team_id: store.get_bytes(ctx.layout.team_record(team_id)) for team_id in ("vision-lab", "kobe-2025", "team1-lab")}
    mailbox.clear()

    imitations = {
        "4-zero.json": registration("VISION\u200b LAB", "vision@lab.example.org", ["alpha"], {"alpha": upload_agreement(ctx, "zero.pdf")}, contact_name="Vi"),
        "5-digit.json": registration("VISI0N LAB", "vision@lab.example.org", ["beta"]),  # the same contact, even
        "6-cyrillic.json": registration("КОВЕ 2025", "other@lab.example.org", ["beta"]),  # a whole-script look-alike
        "7-mixed.json": registration("Vіsion Lab", "other@lab.example.org", ["beta"]),  # Cyrillic і in a Latin name
        "8-ell.json": registration("Teaml Lab", "other@lab.example.org", ["beta"]),
    }
    for name, document in imitations.items():
        submit(ctx, name, document)
    submit(ctx, *AFTER)

    outcome = intake(ctx)

    assert [a["team_id"] for a in outcome["accepted"]] == ["good-after"]
    reasons = {r["document"].rsplit("/", 1)[1]: r["reasons"][0] for r in outcome["rejected"]}
    assert set(reasons) == set(imitations)
    assert "team_name: character 7 is U+200B ZERO WIDTH SPACE" in reasons["4-zero.json"]
    assert "team_name: 'VISI0N LAB' reads like the name of the registered team vision-lab ('VISION LAB') without being the same name" in reasons["5-digit.json"]
    assert "reads like the name of the registered team kobe-2025 ('KOBE 2025')" in reasons["6-cyrillic.json"]
    assert "team_name: mixes letters of the scripts Cyrillic, Latin" in reasons["7-mixed.json"]
    assert "reads like the name of the registered team team1-lab ('Team1 Lab')" in reasons["8-ell.json"]
    assert {team_id: store.get_bytes(ctx.layout.team_record(team_id)) for team_id in originals} == originals
    assert sorted(k.rsplit("/", 1)[1] for k in store.list_keys(ctx.layout.registrations_teams())) == ["good-after.json", "kobe-2025.json", "team1-lab.json", "vision-lab.json"]


def test_the_same_name_in_other_width_and_case_is_the_same_team_or_a_named_second_one(ctx, store, mailbox):
    submit(ctx, "1.json", registration("Vision Lab", "vision@lab.example.org", ["beta"]))
    intake(ctx)
    submit(ctx, "2.json", registration("ＶＩＳＩＯＮ lab", "vision@lab.example.org", ["alpha"], {"alpha": upload_agreement(ctx, "v.pdf")}))
    submit(ctx, "3.json", registration("vision  lab", "someone@else.example.org", ["beta"]))
    mailbox.clear()

    outcome = intake(ctx)

    assert [(a["team_id"], a["namesakes"]) for a in outcome["accepted"]] == [("vision-lab", []), ("vision-lab-2", ["vision-lab"])]
    assert store.get_json(ctx.layout.team_record("vision-lab"))["tasks"] == ["alpha", "beta"]  # the same contact: the same team
    [second] = mailbox.to("someone@else.example.org")
    assert "Your team id is vision-lab-2" in second.body and "Another team registered under the same name already (vision-lab)" in second.body
    [first] = mailbox.to("vision@lab.example.org")
    assert "Another team registered" not in first.body


def test_a_huge_inbox_object_is_refused_from_its_listed_size_without_being_read(ctx, store, mailbox):
    reads: list[str] = []
    store.client.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: reads.append(params["Key"]))
    huge = b'{"team_name": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    key = _between(ctx, "5-huge.json", huge)

    outcome = intake(ctx)

    _assert_the_others_were_taken_in(ctx, store, mailbox, outcome)
    assert key not in reads  # refused from the listing's size: not a byte of it was downloaded
    [rejected] = outcome["rejected"]
    assert rejected["reasons"] == [f"{key}: {len(huge)} bytes; a registration is a JSON document of at most 64 KiB (it was not read, and is not kept)"]
    reason = _reason_file(store, ctx, key)
    assert reason["size"] == len(huge) and reason["content_kept"] is False
    assert not store.exists(rejected["kept_at"] + "registration.json")


def test_reading_a_document_stops_after_the_limit_even_if_it_grew_after_the_listing(store):
    store.put_bytes("big.bin", b"y" * (3 * MAX_DOCUMENT_BYTES))
    assert len(store.get_bytes_at_most("big.bin", MAX_DOCUMENT_BYTES)) == MAX_DOCUMENT_BYTES + 1
    store.put_bytes("small.bin", b"{}")
    assert store.get_bytes_at_most("small.bin", MAX_DOCUMENT_BYTES) == b"{}"


def test_one_signed_agreement_for_two_teams_is_flagged_to_the_organizers(ctx, store, mailbox):
    signed = b"%PDF-1.4 agreement signed by the PI of team A\n"
    for name in ("a.pdf", "b-copy.pdf"):
        store.put_bytes(ctx.layout.agreements() + name, signed, content_type="application/pdf")
    store.put_bytes(ctx.layout.agreements() + "d.pdf", b"%PDF-1.4 agreement signed by the PI of team D\n", content_type="application/pdf")
    submit(ctx, "1-a.json", registration("Team A", "a@team.example.org", ["alpha"], {"alpha": "registrations/agreements/a.pdf"}))
    submit(ctx, "2-b.json", registration("Team B", "b@team.example.org", ["alpha", "beta"], {"alpha": "registrations/agreements/b-copy.pdf"}))
    submit(ctx, "3-c.json", registration("Team C", "c@team.example.org", ["alpha"], {"alpha": "registrations/agreements/a.pdf"}))
    submit(ctx, "4-d.json", registration("Team D", "d@team.example.org", ["alpha"], {"alpha": "registrations/agreements/d.pdf"}))

    outcome = intake(ctx)

    digest = hashlib.sha256(signed).hexdigest()
    assert [a["team_id"] for a in outcome["accepted"]] == ["team-a", "team-b", "team-c", "team-d"]
    flags = {a["team_id"]: a["agreement_flags"] for a in outcome["accepted"]}
    assert flags["team-a"] == {} and flags["team-d"] == {}
    assert flags["team-b"] == {"alpha": f"the same file (sha256 {digest}) as the signed agreement of team team-a for alpha: each team signs its own agreement"}
    assert flags["team-c"] == {"alpha": f"the same file (sha256 {digest}) as the signed agreement of team team-a for alpha, team team-b for alpha: each team signs its own agreement"}
    record = store.get_json(ctx.layout.team_record("team-b"))
    assert record["agreement_sha256"] == {"alpha": digest} and record["agreement_flags"] == flags["team-b"]
    assert store.get_json(ctx.layout.team_record("team-a"))["agreement_flags"] == {}

    for organizer in (ORGANIZER, ALPHA_ORGANIZER):
        told = mailbox.to(organizer)
        assert len(told) == 2 and all(m.subject.endswith("needs an organizer") for m in told)
        assert any("team team-b, agreement for alpha: the same file" in m.body for m in told)
    [confirmation] = mailbox.to("b@team.example.org")
    assert "your agreement file is identical to one another team sent" in confirmation.body
    assert "identical" not in mailbox.to("a@team.example.org")[0].body

    summary = close(ctx, ["alpha", "beta"])
    [closing] = [m for m in mailbox.to(ORGANIZER) if "registration closed" in m.subject]
    assert f"! agreement file: the same file (sha256 {digest}) as the signed agreement of team team-a" in closing.body
    assert summary["teams_per_task"] == {"alpha": 4, "beta": 1}


def test_a_decision_for_several_tasks_is_checked_whole_before_anything_is_recorded(ctx, store, mailbox):
    from include.campaign.registration import decide_agreements

    upload = upload_agreement(ctx, "careful.pdf")
    submit(ctx, "careful.json", registration("Careful", "careful@team.example.org", ["alpha", "beta"], {"alpha": upload}))
    intake(ctx)
    before, count = bucket_state(store), len(mailbox.messages)

    with pytest.raises(RegistrationError, match=r"nothing was decided:\n  task beta needs no signed agreement"):
        decide_agreements(ctx, "careful", ["alpha", "beta"], True, "organizer-ana")

    assert bucket_state(store) == before and len(mailbox.messages) == count
    [decided] = decide_agreements(ctx, "careful", ["alpha"], True, "organizer-ana", "signed")
    assert decided["approved"] and store.get_json(ctx.layout.approval_record("careful", "alpha"))["agreement_sha256"] == hashlib.sha256(b"%PDF-1.4 signed agreement\n").hexdigest()
