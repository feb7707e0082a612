"""The whole participant journey through the portal, against the moto S3 server and aiosmtpd.

Register with the form, confirm the address, be taken in by intake, sign in by the e-mailed link,
download released bytes through a fresh link, upload runs through the presigned POST, and get the
submission check's receipts: valid, invalid with its first problems, over-size; each e-mailed once.
"""
from __future__ import annotations

import base64
import json

from include.campaign import submission_check
from include.campaign.registration import intake
from include.campaign.teams import load_team

from tests.portal.conftest import (
    PDF,
    TEST_IDS,
    confirm_by_link,
    fetch,
    link_to,
    post_registration,
    post_to_store,
    register_team,
    registration_fields,
    sign_in,
    stage_and_release,
    upload_forms,
    valid_run,
)

EMAIL = "lead@alpha.example.org"


def test_form_registration_waits_for_the_contact_to_confirm_its_address(client, ctx, store, mailbox):
    answer = post_registration(client, registration_fields(email=EMAIL), {"agreement_alpha": ("../../etc/passwd.pdf", PDF)})
    assert answer.status_code == 200 and "confirm your address" in answer.text
    inbox = store.list_keys(ctx.layout.registrations_inbox())
    assert len(inbox) == 1
    document = store.get_json(inbox[0])
    assert set(document) == {"team_name", "affiliation", "country", "contact_name", "contact_email", "tasks", "agreements"}
    agreement_key = ctx.layout.agreements() + document["agreements"]["alpha"].rsplit("/", 1)[1]
    assert store.get_bytes(agreement_key) == PDF and "passwd" not in agreement_key  # the client's file name is never used
    assert [m.subject for m in mailbox.messages] == ["Portal Lab 2026: please confirm your e-mail address"]
    assert "Team Alpha" not in mailbox.messages[0].body  # nothing the registrant typed goes to an unconfirmed address

    waiting = intake(ctx)
    assert waiting["accepted"] == [] and len(waiting["awaiting_confirmation"]) == 1
    assert store.list_keys(ctx.layout.registrations_teams()) == []
    assert len(mailbox.messages) == 1  # the confirmation link went out once

    assert "Address confirmed" in confirm_by_link(client, link_to(mailbox, EMAIL, "confirm")).text
    accepted = intake(ctx)
    assert [a["team_id"] for a in accepted["accepted"]] == ["team-alpha"]
    assert load_team(ctx, "team-alpha")["agreements"]["alpha"] == agreement_key
    confirmation_mail = mailbox.messages[-1]
    assert "registration of Team Alpha confirmed" in confirmation_mail.subject and "/c/portallab/sign-in?token=" in confirmation_mail.body


def test_a_document_put_in_the_inbox_by_hand_also_needs_confirmation(client, ctx, store, mailbox):
    key = ctx.layout.registrations_inbox() + "curl-upload.json"
    store.put_bytes(key, json.dumps({**registration_fields(email="curl@beta.example.org", tasks=["beta"]), "country": "fr"}).encode())
    assert len(intake(ctx)["awaiting_confirmation"]) == 1 and intake(ctx)["accepted"] == []
    assert [m.recipients for m in mailbox.messages] == [["curl@beta.example.org"]]
    confirm_by_link(client, link_to(mailbox, "curl@beta.example.org", "confirm"))
    assert intake(ctx)["accepted"][0]["team_id"] == "team-alpha"


def test_a_known_team_cannot_be_changed_without_its_contact(client, ctx, store, mailbox):
    register_team(client, ctx, mailbox, tasks=("beta",))
    hijack = {**registration_fields(email=EMAIL, tasks=["beta"]), "affiliation": "Evil Corp"}
    store.put_bytes(ctx.layout.registrations_inbox() + "hijack.json", json.dumps(hijack).encode())
    assert intake(ctx)["accepted"] == []
    assert load_team(ctx, "team-alpha")["affiliation"] == "University of Tests"


def test_team_page_downloads_uploads_and_receipts(client, ctx, store, mailbox):
    team_id = register_team(client, ctx, mailbox)
    stage_and_release(ctx, "beta", "test")
    sign_in(client, mailbox, EMAIL)
    page = client.get("/c/portallab/team")
    assert page.status_code == 200 and "Team Alpha" in page.text
    assert "pending" in page.text  # alpha's agreement waits for an organizer

    # a fresh presigned link at each click, and the bytes are the released ones
    first = client.post("/c/portallab/team/download", data={"csrf_token": _token(page.text), "task": "beta", "split": "test", "path": "images/list.txt"}, follow_redirects=False)
    assert first.status_code == 303
    assert fetch(first.headers["location"]) == "\n".join(TEST_IDS).encode()
    listing = client.post("/c/portallab/team/download", data={"csrf_token": _token(page.text), "task": "beta", "split": "test", "path": "*"})
    assert listing.status_code == 200 and fetch(listing.text.strip()) == "\n".join(TEST_IDS).encode()
    blocked = client.post("/c/portallab/team/download", data={"csrf_token": _token(page.text), "task": "alpha", "split": "test", "path": "images/list.txt"})
    assert blocked.status_code == 403  # agreement pending
    forged = client.post("/c/portallab/team/download", data={"task": "beta", "split": "test", "path": "images/list.txt"}, follow_redirects=False)
    assert forged.status_code == 403 and "form key" in forged.text  # signed in, but no CSRF key: refused

    forms = upload_forms(page.text)
    assert sorted(forms) == ["run-01", "run-02", "run-03"]  # beta's slots; alpha has no upload form before approval
    action, fields = forms["run-01"]
    stored = post_to_store(action, fields, valid_run())
    assert stored.status_code == 303 and stored.headers["location"].startswith("http://testserver/c/portallab/team")
    assert store.get_bytes(ctx.layout.submissions("beta", team_id) + "run-01") == valid_run()

    assert f"run-01: {len(valid_run())} bytes received" in client.get("/c/portallab/team").text  # before the check: received, receipt to come

    before = len(mailbox.messages)
    report = submission_check.check(ctx, "beta")
    assert [c["status"] for c in report["checked"]] == ["valid"]
    receipt_mail = mailbox.messages[before:]
    assert len(receipt_mail) == 1 and "run-01 received, valid" in receipt_mail[0].subject and "sha256" in receipt_mail[0].body

    broken = b"img-001,0\nimg-002,7\nimg-999,1\n"
    post_to_store(*forms["run-02"], broken)
    submission_check.check(ctx, "beta")
    invalid = mailbox.messages[-1]
    assert "run-02 received, INVALID" in invalid.subject and "line 2" in invalid.body

    before = len(mailbox.messages)
    again = submission_check.check(ctx, "beta")
    assert again["checked"] == [] and again["already_checked"] == 2 and len(mailbox.messages) == before  # nothing twice

    page = client.get("/c/portallab/team")
    assert page.text.count("receipt</a>") == 2 and "invalid" in page.text and "valid" in page.text
    receipts = submission_check.team_receipts(ctx, "beta", team_id)
    receipt_page = client.get(f"/c/portallab/team/receipts/beta/run-02/{receipts[0]['version']}")
    assert receipt_page.status_code == 200 and "line 2" in receipt_page.text


def test_signed_upload_policy_fixes_the_key_and_the_size(client, ctx, mailbox):
    team_id = register_team(client, ctx, mailbox, tasks=("beta",))
    sign_in(client, mailbox, EMAIL)
    forms = upload_forms(client.get("/c/portallab/team").text)
    for slot, (action, fields) in forms.items():
        policy = json.loads(base64.b64decode(fields["policy"]))
        conditions = policy["conditions"]
        assert {"key": ctx.layout.submissions("beta", team_id) + slot} in conditions
        assert {"bucket": ctx.store.bucket} in conditions
        assert ["content-length-range", 1, 400] in conditions  # beta's max_bytes
        assert fields["key"] == ctx.layout.submissions("beta", team_id) + slot
        assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)


def test_an_upload_over_max_bytes_never_counts(client, ctx, store, mailbox):
    team_id = register_team(client, ctx, mailbox, tasks=("beta",))
    stage_and_release(ctx, "beta", "test")
    sign_in(client, mailbox, EMAIL)
    action, fields = upload_forms(client.get("/c/portallab/team").text)["run-03"]
    post_to_store(action, fields, valid_run() + b"x" * 500)  # moto does not enforce the policy; S3 and MinIO do
    checked = submission_check.check(ctx, "beta")["checked"]
    assert checked == [{"team": team_id, "run": "run-03", "status": "refused"}]
    receipt = submission_check.team_receipts(ctx, "beta", team_id)[0]
    assert receipt["sha256"] is None and "over this task's limit of 400 bytes" in receipt["reason"]
    assert "REFUSED" in mailbox.messages[-1].subject and "never counts" in mailbox.messages[-1].body


def test_a_team_sees_and_writes_only_its_own_runs(client, ctx, store, mailbox):
    team_a = register_team(client, ctx, mailbox, tasks=("beta",))
    team_b = register_team(client, ctx, mailbox, team="Team Beta", email="lead@beta.example.org", tasks=("beta",))
    stage_and_release(ctx, "beta", "test")
    store.put_bytes(ctx.layout.submissions("beta", team_b) + "run-01", valid_run())
    submission_check.check(ctx, "beta")
    version_b = submission_check.team_receipts(ctx, "beta", team_b)[0]["version"]

    client.cookies.clear()
    sign_in(client, mailbox, EMAIL)
    page = client.get("/c/portallab/team").text
    assert team_b not in page and "Team Beta" not in page
    assert all(fields["key"].startswith(ctx.layout.submissions("beta", team_a)) for _, fields in upload_forms(page).values())
    assert client.get(f"/c/portallab/team/receipts/beta/run-01/{version_b}").status_code == 404  # A's session, B's version


def test_an_organizer_revokes_a_teams_links(client, ctx, mailbox):
    from include.campaign.confirmation import revoke_sign_in

    team_id = register_team(client, ctx, mailbox, tasks=("beta",))
    link = link_to(mailbox, EMAIL, "sign-in").replace("http://testserver", "")
    sign_in(client, mailbox, EMAIL)
    assert client.get("/c/portallab/team").status_code == 200
    revoke_sign_in(ctx, team_id, "chair", "contact left the team")
    assert client.get("/c/portallab/team").status_code == 401  # the session dies with the links
    refused = client.get(link, follow_redirects=False)
    assert refused.status_code == 400 and "withdrawn by the organizers" in refused.text

    page = client.get("/c/portallab/sign-in")
    asked = client.post("/c/portallab/sign-in", data={"csrf_token": _token(page.text), "contact_email": EMAIL})
    assert asked.status_code == 200
    fresh = link_to(mailbox, EMAIL, "sign-in").replace("http://testserver", "")
    assert fresh != link and client.get(fresh, follow_redirects=False).status_code == 303


def _token(page: str) -> str:
    from tests.portal.conftest import form_token

    return form_token(page)


def test_upload_forms_are_signed_by_the_upload_principal(s3_settings):
    from dataclasses import replace

    from include.campaign.store import ObjectStore, SigningKey

    store = ObjectStore(replace(s3_settings, upload_signer=SigningKey("clefuploader01", "uploader-secret")))
    post = store.presigned_post("portallab/submissions/beta/team-a/run-01", 400, 600)
    assert post["fields"]["x-amz-credential"].startswith("clefuploader01/")
