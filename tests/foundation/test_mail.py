"""Mail over real SMTP (aiosmtpd on loopback) through the create-once outbox."""
from __future__ import annotations

import pytest

from include.campaign.layout import Layout
from include.campaign.mail import Mail, MailError, Outbox, SmtpSender, SmtpSettings, render_mail
from devtools.devstack import free_port


def _outbox(store, settings):
    return Outbox(store, Layout("demo"), SmtpSender(settings))


def test_a_message_sent_twice_with_the_same_key_arrives_once(store, smtp_settings, mailbox):
    outbox = _outbox(store, smtp_settings)
    mail = Mail(recipient="team@example.org", subject="Your receipt", body="We collected run1.")
    first = outbox.send_once("receipt", "run_deadline", mail)
    second = outbox.send_once("receipt", "run_deadline", mail)
    assert (first.sent, second.sent) == (True, False)
    assert len(mailbox.messages) == 1
    received = mailbox.messages[0]
    assert received.recipients == ["team@example.org"] and received.subject == "Your receipt"
    assert "We collected run1." in received.body
    assert store.get_json(first.key)["recipient"] == "team@example.org"


def test_other_purpose_or_milestone_is_another_message(store, smtp_settings, mailbox):
    outbox = _outbox(store, smtp_settings)
    mail = Mail(recipient="team@example.org", subject="s", body="b")
    outbox.send_once("reminder", "working_notes_deadline_minus_14d", mail)
    outbox.send_once("reminder", "working_notes_deadline_minus_7d", mail)
    outbox.send_once("receipt", "working_notes_deadline_minus_7d", mail)
    assert len(mailbox.messages) == 3
    assert len(outbox.sent_markers("reminder")) == 2


def test_send_to_a_stopped_server_fails_clearly_and_leaves_no_marker(store, smtp_settings, mailbox):
    port = free_port()  # nothing listens here
    dead = SmtpSettings(host="127.0.0.1", port=port, timeout=2, attempts=2, backoff_seconds=0.05)
    outbox = _outbox(store, dead)
    mail = Mail(recipient="team@example.org", subject="Data links", body="...")
    with pytest.raises(MailError, match=rf"cannot send 'Data links' to team@example.org via SMTP server 127\.0\.0\.1:{port} after 2 attempt\(s\): Connection refused"):
        outbox.send_once("release", "test_data_release", mail)
    assert not outbox.already_sent("release", "test_data_release", "team@example.org")
    # once a server answers, the retry sends it
    retry = _outbox(store, smtp_settings).send_once("release", "test_data_release", mail)
    assert retry.sent and len(mailbox.messages) == 1


def test_templates_render_subject_and_body():
    mail = render_mail("_selftest", "a@example.org", campaign_name="ImageCLEF 2025", items=["<b>x</b>"])
    assert mail.subject == "ImageCLEF 2025: test message"
    assert "<b>x</b>" in mail.body  # plain text mail is not HTML-escaped


def test_settings_from_airflow_smtp_connection_json():
    settings = SmtpSettings.from_connection_json('{"conn_type": "smtp", "host": "mail", "port": 587, "login": "u", "password": "p", "extra": {"from_email": "lab@x.org", "disable_tls": false}}')
    assert (settings.host, settings.port, settings.sender, settings.starttls, settings.username) == ("mail", 587, "lab@x.org", True, "u")
