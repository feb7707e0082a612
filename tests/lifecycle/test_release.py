"""Data release against the real moto S3 server and aiosmtpd: verification, ground truth, links, faults."""
from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from include.campaign.mail import SmtpSettings
from include.campaign.registration import decide_agreement, intake
from include.campaign.release import ReleaseError, refresh_upload_links, release
from include.campaign.teams import DeliveryError
from devtools.devstack import MailRecorder, free_port, start_smtp_server
from tests.lifecycle.conftest import bucket_state, context_with, download, register, registration, stage, submit, upload, urls_in

IMAGES = {"images/1.png": b"\x89PNG one" * 50, "images/2.png": b"\x89PNG two" * 70}
GOLD = b"id,label\n1,0\n2,1\n"


def _gold_bytes_under_releases(ctx) -> list[str]:
    gold = {hashlib.sha256(ctx.store.get_bytes(k)).hexdigest() for split in ("dev", "test") for k in ctx.store.list_keys(ctx.layout.gold("beta", split))}
    return [k for k in ctx.store.list_keys(ctx.campaign.id + "/releases/") if hashlib.sha256(ctx.store.get_bytes(k)).hexdigest() in gold]


def test_a_release_publishes_the_verified_files_withholds_ground_truth_and_mails_working_links(ctx, store, mailbox):
    team = register(ctx, "Open Team", "open@team.example.org", ["beta"])
    store.put_bytes(ctx.layout.gold("beta", "test") + "labels.csv", GOLD)
    files = {**IMAGES, "truth.csv": b"secret,1\n", "gold/answers.csv": b"secret,2\n", "extra/copy-of-labels.csv": GOLD}
    stage(ctx, "beta", "dev", files, ground_truth=("truth.csv",))
    mailbox.clear()

    result = release(ctx, "beta", "dev")

    assert result["released"] == ["images/1.png", "images/2.png"]
    assert {w["path"]: w["reason"] for w in result["withheld"]} == {
        "truth.csv": "marked ground_truth in the manifest",
        "gold/answers.csv": "inside a folder named gold",
        "extra/copy-of-labels.csv": "same bytes as the ground-truth object lifecycle/gold/beta/test/labels.csv",
    }
    assert store.list_keys(ctx.layout.releases("beta", "dev")) == [ctx.layout.releases("beta", "dev") + p for p in IMAGES]
    assert _gold_bytes_under_releases(ctx) == []
    [mail] = [m for m in mailbox.messages if m.recipients == ["open@team.example.org"]]
    assert mail.recipients == ["open@team.example.org"] and mail.subject == "Lifecycle Lab 2025: development data of beta"
    links = urls_in(mail.body)
    assert len(links) == 2 and all("X-Amz-Expires=7200" in link for link in links)  # 2 h from the campaign file
    assert [download(link) for link in links] == list(IMAGES.values())
    assert result["teams_notified"] == [team]


def test_a_team_whose_agreement_is_pending_gets_no_link_until_it_is_approved(ctx, store, mailbox):
    team = register(ctx, "Pending Team", "pending@team.example.org", ["alpha"])
    stage(ctx, "alpha", "dev", IMAGES)
    mailbox.clear()

    assert release(ctx, "alpha", "dev")["teams_notified"] == []
    assert mailbox.messages == []

    decide_agreement(ctx, team, "alpha", True, "organizer-ana", "")
    subjects = [m.subject for m in mailbox.messages]
    assert subjects == ["Lifecycle Lab 2025: your user agreement for alpha is approved", "Lifecycle Lab 2025: development data of alpha"]
    assert [download(u) for u in urls_in(mailbox.messages[1].body)] == list(IMAGES.values())


def test_staging_that_does_not_match_its_manifest_stops_only_that_tasks_release(ctx, store, mailbox):
    register(ctx, "Open Team", "open@team.example.org", ["alpha", "beta"])
    stage(ctx, "alpha", "dev", {**IMAGES, "notes.txt": b"n"}, manifest_overrides={"images/1.png": {"sha256": "0" * 64}, "notes.txt": {"path": "missing.txt"}})
    store.put_bytes(ctx.layout.staging("alpha", "dev") + "images/2.png", b"truncated")
    stage(ctx, "beta", "dev", IMAGES)
    mailbox.clear()

    with pytest.raises(ReleaseError) as caught:
        release(ctx, "alpha", "dev")
    message = str(caught.value)
    prefix = ctx.layout.staging("alpha", "dev")
    assert message.startswith("staging of alpha/dev does not match its manifest; nothing of it was released:")
    assert f"{prefix}images/1.png: sha256 differs from the manifest" in message
    assert f"{prefix}images/2.png: 9 bytes staged, the manifest says 560" in message
    assert f"{prefix}missing.txt: listed in MANIFEST.json but not staged" in message
    assert f"{prefix}notes.txt: staged but not listed in MANIFEST.json" in message
    assert store.list_keys(ctx.layout.releases("alpha", "dev")) == []

    assert release(ctx, "beta", "dev")["released"] == list(IMAGES)  # the other task goes on


def test_a_missing_or_malformed_manifest_is_named_with_its_line(ctx, store):
    with pytest.raises(ReleaseError, match=r"lifecycle/staging/beta/test/MANIFEST.json: no manifest, so nothing of beta/test was released"):
        release(ctx, "beta", "test")
    store.put_bytes(ctx.layout.staging_manifest("beta", "test"), b'{"files": [\n  {"path": "a", "sha256": "00", "size": 1},\n  {"path": "../b"\n')
    with pytest.raises(ReleaseError, match=r"MANIFEST.json, line 4, column 1: not valid JSON"):
        release(ctx, "beta", "test")
    store.put_bytes(ctx.layout.staging_manifest("beta", "test"), b'{"files": [\n  {"path": "a", "sha256": "00", "size": 1},\n  {"path": "../b", "sha256": "00", "size": 1}\n]}')
    with pytest.raises(ReleaseError) as caught:
        release(ctx, "beta", "test")
    assert "MANIFEST.json, line 2: files[0]: a: \"sha256\" must be 64 hexadecimal digits" in str(caught.value)
    assert "MANIFEST.json, line 3: files[1]: path '../b': '..' cannot be part of an object key" in str(caught.value)


def test_the_test_release_sends_one_upload_link_per_allowed_run(ctx, store, mailbox):
    team = register(ctx, "Uploader", "up@team.example.org", ["beta"])
    stage(ctx, "beta", "test", IMAGES)
    mailbox.clear()

    release(ctx, "beta", "test")

    data_mail, upload_mail = mailbox.messages
    assert data_mail.subject.endswith("test data of beta") and upload_mail.subject.endswith("your run upload links for beta")
    links = urls_in(upload_mail.body)
    assert [link.split("?")[0].rsplit("/", 1)[1] for link in links] == ["run-01", "run-02", "run-03"]
    assert "curl -T YOUR_RUN_FILE 'UPLOAD_LINK'" in upload_mail.body
    upload(links[1], b"id,label\n1,1\n")
    assert store.get_bytes(ctx.layout.submissions("beta", team) + "run-02") == b"id,label\n1,1\n"


def test_running_a_release_again_changes_no_object_and_sends_no_mail(ctx, store, mailbox):
    register(ctx, "Open Team", "open@team.example.org", ["beta"])
    stage(ctx, "beta", "test", IMAGES, ground_truth=("images/2.png",))
    release(ctx, "beta", "test")
    count, before = len(mailbox.messages), bucket_state(store)

    again = release(ctx, "beta", "test")

    assert again["mail"]["sent"] == 0 and len(mailbox.messages) == count
    assert bucket_state(store) == before


def test_a_team_registering_after_a_release_receives_its_links_with_the_confirmation(ctx, store, mailbox):
    register(ctx, "Early Team", "early@team.example.org", ["beta"])
    stage(ctx, "beta", "dev", IMAGES)
    release(ctx, "beta", "dev")
    mailbox.clear()

    submit(ctx, "late.json", registration("Late Team", "late@team.example.org", ["beta"]))
    [accepted] = intake(ctx)["accepted"]

    assert accepted["released_data_sent"] == ["beta/dev"]
    confirmation, links = mailbox.to("late@team.example.org")
    assert "Already released: dev data; the links follow in a separate e-mail." in confirmation.body
    assert links.subject.endswith("development data of beta")
    assert [download(u) for u in urls_in(links.body)] == list(IMAGES.values())
    assert mailbox.to("early@team.example.org") == []


def test_with_the_smtp_server_down_a_release_fails_after_its_retries_and_a_rerun_sends_each_mail_once(ctx, store, mailbox):
    for name in ("one", "two"):
        register(ctx, f"Team {name}", f"{name}@team.example.org", ["beta"])
    stage(ctx, "beta", "test", IMAGES)
    mailbox.clear()
    port = free_port()
    down = context_with(ctx, ctx.campaign, SmtpSettings(host="127.0.0.1", port=port, timeout=2, attempts=2, backoff_seconds=0.05))

    with pytest.raises(DeliveryError) as caught:
        release(down, "beta", "test")
    message = str(caught.value)
    assert message.startswith("release of beta/test: 4 e-mail(s) not sent (0 sent)")
    assert f"data-links to one@team.example.org: cannot send" in message and f"127.0.0.1:{port} after 2 attempt(s)" in message
    assert mailbox.messages == [] and ctx.outbox.sent_markers("data-links") == []

    release(ctx, "beta", "test")
    release(ctx, "beta", "test")
    assert sorted((m.recipients[0], m.subject.rsplit(": ", 1)[1]) for m in mailbox.messages) == [
        ("one@team.example.org", "test data of beta"), ("one@team.example.org", "your run upload links for beta"),
        ("two@team.example.org", "test data of beta"), ("two@team.example.org", "your run upload links for beta"),
    ]


def test_upload_links_are_renewed_once_per_period_until_the_deadline(ctx, store, mailbox):
    team = register(ctx, "Long Haul", "long@team.example.org", ["beta"])
    stage(ctx, "beta", "test", IMAGES)
    released_at = ctx.campaign.milestone_time("test_data_release", "beta")
    at_release = context_with(ctx, ctx.campaign)
    at_release.clock = lambda: released_at + dt.timedelta(minutes=5)
    release(at_release, "beta", "test")
    assert refresh_upload_links(at_release, "beta")["teams_notified"] == []  # the release's own links are fresh
    mailbox.clear()

    later = context_with(ctx, ctx.campaign)  # links live 3 h in this campaign: renewed every 1.5 h
    later.clock = lambda: released_at + dt.timedelta(hours=1, minutes=40)
    assert refresh_upload_links(later, "beta") | {"mail": None} == {"task": "beta", "window": 1, "teams_notified": [team], "mail": None}
    refresh_upload_links(later, "beta")
    [renewal] = mailbox.messages
    assert renewal.subject == "Lifecycle Lab 2025: your run upload links for beta (renewed)"
    assert "X-Amz-Expires=10800" in urls_in(renewal.body)[0]
    upload(urls_in(renewal.body)[0], b"renewed link works")
    assert store.get_bytes(ctx.layout.submissions("beta", team) + "run-01") == b"renewed link works"

    after_deadline = context_with(ctx, ctx.campaign)
    after_deadline.clock = lambda: ctx.campaign.milestone_time("run_deadline", "beta") + dt.timedelta(seconds=1)
    assert refresh_upload_links(after_deadline, "beta")["teams_notified"] == [] and len(mailbox.messages) == 1


class _BouncingRecorder(MailRecorder):
    """An SMTP server that has no mailbox for addresses starting with ``bounce@``."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's hook name)
        if address.startswith("bounce@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_an_address_the_server_refuses_is_reported_and_the_other_teams_are_served(ctx, store, mailbox):
    register(ctx, "Fine Team", "fine@team.example.org", ["beta"])
    register(ctx, "Bounce Team", "bounce@team.example.org", ["beta"])
    stage(ctx, "beta", "dev", IMAGES)
    recorder = _BouncingRecorder()
    controller, port = start_smtp_server(recorder)
    try:
        bouncing = context_with(ctx, ctx.campaign, SmtpSettings(host="127.0.0.1", port=port, timeout=5, attempts=2, backoff_seconds=0.05))
        result = release(bouncing, "beta", "dev")
    finally:
        controller.stop()
    assert result["teams_notified"] == ["fine-team"]
    [refused] = result["mail"]["undeliverable"]
    assert refused["recipient"] == "bounce@team.example.org" and "no such mailbox" in refused["error"]
    assert [m.recipients for m in recorder.messages] == [["fine@team.example.org"], ["chair@lab.example.org"]]
    told = recorder.messages[1]  # the organizers are told which address bounced, once
    assert "bounce@team.example.org" in told.body and "no such mailbox" in told.body and "release of beta/dev" in told.subject


def test_a_release_that_withholds_files_tells_the_organizers_what_and_why_once(ctx, store, mailbox):
    from tests.lifecycle.conftest import ORGANIZER

    register(ctx, "Open Team", "open@team.example.org", ["beta"])
    dev_labels = b"id,label\n7,1\n"
    store.put_bytes(ctx.layout.gold("beta", "dev") + "labels.csv", dev_labels)
    stage(ctx, "beta", "dev", {**IMAGES, "dev-labels.csv": dev_labels, "truth.csv": b"secret,1\n"}, ground_truth=("truth.csv",))
    mailbox.clear()

    release(ctx, "beta", "dev")
    release(ctx, "beta", "dev")  # a retry: nothing mailed twice

    [notice] = [m for m in mailbox.messages if m.recipients == [ORGANIZER]]
    assert notice.subject == "Lifecycle Lab 2025: 2 staged files of beta withheld from the development release"
    assert "  - dev-labels.csv: same bytes as the ground-truth object lifecycle/gold/beta/dev/labels.csv" in notice.body
    assert "  - truth.csv: marked ground_truth in the manifest" in notice.body
    assert "release belong in staging only" in notice.body
    assert len([m for m in mailbox.messages if m.recipients == ["open@team.example.org"]]) == 1


def test_a_release_that_withholds_nothing_mails_no_organizer(ctx, store, mailbox):
    from tests.lifecycle.conftest import ORGANIZER

    register(ctx, "Open Team", "open@team.example.org", ["beta"])
    stage(ctx, "beta", "dev", IMAGES)
    mailbox.clear()
    release(ctx, "beta", "dev")
    assert [m for m in mailbox.messages if ORGANIZER in m.recipients] == []
