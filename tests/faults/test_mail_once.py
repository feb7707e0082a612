"""Each e-mail at most once, even with two senders at the same moment; header values always on one line."""
from __future__ import annotations

import threading

import pytest

from include.campaign import results
from include.campaign.layout import Layout
from include.campaign.mail import Mail, MailError, Outbox, SmtpSender, render_mail
from include.campaign.teams import DeliveryError, Notices
from tests.faults.conftest import EMAILS, ORGANIZER, TASK, settings, with_smtp
from tests.faults.smtp_servers import SlowRecorder, start


def run_together(*functions):
    """Start every function at the same moment in its own thread; their results (or errors) in order."""
    barrier = threading.Barrier(len(functions))
    outcomes: list = [None] * len(functions)

    def run(index, function):
        barrier.wait()
        try:
            outcomes[index] = function()
        except Exception as error:  # noqa: BLE001 (returned to the test)
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


# --- item 4: two senders at once -----------------------------------------------------------------


def test_two_senders_of_the_same_message_at_once_deliver_it_once(store):
    recorder = SlowRecorder()  # accepts after 0.6 s: both senders are inside send_once together
    controller, port = start(recorder)
    try:
        outbox = lambda: Outbox(store, Layout("demo"), SmtpSender(settings(port, timeout=5)))  # noqa: E731
        mail = Mail(recipient="team@example.org", subject="Registration confirmed", body="Welcome.")
        first, second = run_together(lambda: outbox().send_once("registration-confirmation", "doc-1", mail),
                                     lambda: outbox().send_once("registration-confirmation", "doc-1", mail))
    finally:
        controller.stop()
    assert len(recorder.messages) == 1
    assert sorted((first.sent, second.sent)) == [False, True]
    loser = first if not first.sent else second
    assert loser.status in ("in progress", "sent")
    assert store.get_json(first.key)["status"] == "sent"


def test_two_publications_at_once_mail_each_team_once(scored):
    recorder = SlowRecorder()
    recorder.delay = 0.2
    controller, port = start(recorder)
    try:
        ctx = with_smtp(scored, settings(port, timeout=5))
        outcomes = run_together(lambda: results.publish(ctx, TASK, approved_by="olga"), lambda: results.publish(ctx, TASK, approved_by="olga"))
        # a publication that met the other's claims is not done: it fails, and its retry checks them
        for outcome in outcomes:
            assert not isinstance(outcome, Exception) or (isinstance(outcome, DeliveryError) and "being sent by another worker" in str(outcome)), outcome
        retry = results.publish(ctx, TASK, approved_by="olga")
    finally:
        controller.stop()
    for address in EMAILS.values():
        assert len(recorder.to(address)) == 1, address
    sent = [team for outcome in outcomes if isinstance(outcome, dict) for team in outcome["sent"]]
    assert retry["sent"] == [] and len(sent) <= len(EMAILS) and sorted(retry["already_sent"]) == sorted(EMAILS)


def test_a_failed_send_releases_its_claim_so_the_next_try_sends(store, smtp_settings, mailbox):
    from devtools.devstack import free_port

    mail = Mail(recipient="team@example.org", subject="Links", body="...")
    down = Outbox(store, Layout("demo"), SmtpSender(settings(free_port(), attempts=1)))
    with pytest.raises(MailError) as caught:
        down.send_once("data-links", "beta.test.team", mail)
    assert caught.value.kind == "connection" and not down.already_sent("data-links", "beta.test.team", "team@example.org")
    assert Outbox(store, Layout("demo"), SmtpSender(smtp_settings)).send_once("data-links", "beta.test.team", mail).sent
    assert len(mailbox.messages) == 1


def test_the_message_id_comes_from_the_outbox_key_so_a_resend_is_the_same_message(store, smtp_settings, mailbox):
    from include.campaign.mail import message_id_for

    outbox = Outbox(store, Layout("demo"), SmtpSender(smtp_settings))
    mail = Mail(recipient="team@example.org", subject="Your receipt", body="We collected run1.")
    first = outbox.send_once("run-receipt", "beta.team", mail)
    store.delete(first.key)  # an organizer asks for the message again
    outbox.send_once("run-receipt", "beta.team", mail)
    ids = [message.raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].split(b"\n", 1)[0].decode() for message in mailbox.messages]
    assert ids == [message_id_for(first.key, smtp_settings.sender)] * 2
    assert store.get_json(first.key)["message_id"] == ids[0]
    assert message_id_for(outbox.key("run-receipt", "alpha.team", "team@example.org"), smtp_settings.sender) != ids[0]


def test_a_claim_left_by_a_dead_worker_becomes_unknown_and_is_not_sent(store, smtp_settings, mailbox):
    outbox = Outbox(store, Layout("demo"), SmtpSender(smtp_settings))
    key = outbox.key("results", "gans.team-a", "team@example.org")
    store.put_json(key, {"status": "in progress", "claimed_at": "2026-01-01T00:00:00+00:00", "recipient": "team@example.org"})
    result = outbox.send_once("results", "gans.team-a", Mail(recipient="team@example.org", subject="s", body="b"))
    assert (result.sent, result.status) == (False, "unknown") and "never recorded the outcome" in result.detail
    assert mailbox.messages == [] and store.get_json(key)["status"] == "unknown"


# --- item 5: header values are one line --------------------------------------------------------------

BREAKS = ["\r\n", "\n", "\r", "\u2028", "\u2029", "\u0085", "\x0b", "\x0c"]


@pytest.mark.parametrize("line_break", BREAKS, ids=[repr(b) for b in BREAKS])
def test_a_line_break_in_a_value_never_leaves_the_subject_line(store, smtp_settings, mailbox, line_break):
    name = f"Team{line_break}Bcc: victim@evil.example{line_break}X-Injected: yes"
    mail = render_mail("_selftest", "team@example.org", campaign_name=name, items=["first line\nsecond line"])
    assert "\n" not in mail.subject and line_break not in mail.subject
    assert mail.subject.startswith("Team Bcc: victim@evil.example")
    assert "first line\nsecond line" in mail.body  # a value's newline in the body stays a newline
    Outbox(store, Layout("demo"), SmtpSender(smtp_settings)).send_once("selftest", "one", mail)
    [received] = mailbox.messages
    assert received.recipients == ["team@example.org"]
    message = received.message
    assert message["X-Injected"] is None and message["Bcc"] is None
    assert message["Subject"].startswith("Team Bcc: victim@evil.example") and "\n" not in str(message["Subject"])


def test_a_subject_given_directly_is_one_line_too(store, smtp_settings, mailbox):
    outbox = Outbox(store, Layout("demo"), SmtpSender(smtp_settings))
    outbox.send_once("selftest", "direct", Mail(recipient="team@example.org", subject="Scores\r\nBcc: victim@evil.example\u2028ok", body="b"))
    [received] = mailbox.messages
    assert received.recipients == ["team@example.org"] and received.message["Bcc"] is None
    assert received.subject == "Scores Bcc: victim@evil.example ok"


def test_an_address_with_a_line_break_is_undeliverable_and_the_stage_goes_on(scored, mailbox):
    notices = Notices(scored)
    for milestone, address in (("bad", "victim@evil.example\r\nBcc: other@evil.example"), ("good", "fine@team.example")):
        notices.send("mail-problems", milestone, address, stage="a self test", undeliverable=[], unknown=[])
    notices.raise_if_failed("self test")
    [bad] = notices.undeliverable
    assert bad["recipient"].startswith("victim@evil.example") and "not an e-mail address" in bad["error"]
    assert len(notices.sent) == 1 and not notices.failed
    assert sorted(m.recipients[0] for m in mailbox.messages) == ["fine@team.example", ORGANIZER]


def test_two_intakes_at_once_confirm_each_registration_once(store):
    """Closing runs its own intake while the intake DAG may run: each team still gets one confirmation."""
    from include.campaign.context import CampaignContext
    from include.campaign.registration import intake
    from tests.lifecycle.conftest import make_campaign, now_utc, registration, submit

    recorder = SlowRecorder()
    recorder.delay = 0.2
    controller, port = start(recorder)
    try:
        ctx = CampaignContext(make_campaign(now_utc()), store, settings(port, timeout=5))
        addresses = [f"team{number}@lab{number}.example.org" for number in range(6)]
        for number, address in enumerate(addresses):
            submit(ctx, f"team-{number}.json", registration(f"Team {number}", address, ["beta"]))
        run_together(lambda: intake(ctx), lambda: intake(ctx))
        intake(ctx)  # whatever one of them left in the inbox
    finally:
        controller.stop()
    for address in addresses:
        confirmations = [m for m in recorder.to(address) if "confirmed" in m.subject]
        assert len(confirmations) == 1, (address, [m.subject for m in recorder.to(address)])
