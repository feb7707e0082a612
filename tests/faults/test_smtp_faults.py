"""Results day against SMTP servers on loopback that misbehave on purpose.

For each failure mode (an address refused with 550, the connection dropped after the message body,
a server that accepts and never answers, a server that is down) the stage ends within a bound,
nothing is lost (every message is sent, recorded as undeliverable or unknown, or left for the next
try), and running the stage again sends no message twice.
"""
from __future__ import annotations

import time

import pytest

from include.campaign import results
from include.campaign.teams import DeliveryError
from devtools.devstack import free_port
from tests.faults.conftest import EMAILS, ORGANIZER, TASK, outbox_states, settings, with_smtp
from tests.faults.smtp_servers import BouncingRecorder, BusyRecorder, ScriptedSmtpServer, start

TEAM_ADDRESSES = sorted(EMAILS.values())


def timed(function, *args, **kwargs):
    started = time.monotonic()
    try:
        return function(*args, **kwargs), time.monotonic() - started
    except Exception as error:  # noqa: BLE001 (the caller asserts on it)
        return error, time.monotonic() - started


def publish(ctx):
    return results.publish(ctx, TASK, approved_by="olga")


def recipients(recorder) -> list[str]:
    return sorted(r for message in recorder.messages for r in message.recipients)


# --- item 2: one refused address ---------------------------------------------------------------------


def test_a_refused_address_is_recorded_and_reported_and_every_other_team_gets_its_results(scored):
    recorder = BouncingRecorder()
    controller, port = start(recorder)
    try:
        ctx = with_smtp(scored, settings(port))
        report, seconds = timed(publish, ctx)
        assert not isinstance(report, Exception), report
        assert sorted(report["sent"]) == ["team-a", "team-c", "team-d"]
        [refused] = report["unreachable"]
        assert refused["team"] == "team-b" and "bounce@b.example" in refused["reason"] and "550" in refused["reason"]
        assert [item["recipient"] for item in report["mail"]["undeliverable"]] == ["bounce@b.example"]
        # every other team got its results, and the organizers were told which address bounced
        assert recipients(recorder) == sorted(["alice@a.example", "carol@c.example", "dave@d.example", ORGANIZER])
        [told] = recorder.to(ORGANIZER)
        assert "bounce@b.example" in told.body and "550 5.1.1 no such mailbox" in told.body and "results of gans-detection" in told.subject
        assert outbox_states(ctx, "results")["bounce@b.example"] == "undeliverable"

        # twice = the same: nothing sent again, the refused address is not tried again, organizers not told twice
        again, _ = timed(publish, ctx)
        assert again["sent"] == [] and sorted(again["already_sent"]) == ["team-a", "team-c", "team-d"]
        assert len(recorder.messages) == 4 and recorder.refused == ["bounce@b.example"]
    finally:
        controller.stop()
    assert seconds < 10


def test_a_refused_address_does_not_stop_the_rescore_notices_of_the_other_teams(scored):
    from tests.scoring.scoring_fixtures import GANS_GOLD, gans_gold, score_task, stage_gold

    recorder = BouncingRecorder()
    controller, port = start(recorder)
    try:
        ctx = with_smtp(scored, settings(port))
        publish(ctx)
        recorder.clear()
        stage_gold(ctx, TASK, gans_gold({**GANS_GOLD, "1": 1, "8": 1}))  # every team's score changes
        outcome = score_task(ctx, TASK, reason="gold fixed", by="olga")
        report = results.notify_rescore(ctx, TASK, outcome["version"], "gold fixed")
        assert sorted(report["sent"]) == ["team-a", "team-c", "team-d"] and report["unreachable"][0]["team"] == "team-b"
        assert sorted(m.recipients[0] for m in recorder.messages if m.recipients[0] != ORGANIZER) == ["alice@a.example", "carol@c.example", "dave@d.example"]
        assert len(recorder.to(ORGANIZER)) == 1
        assert results.notify_rescore(ctx, TASK, outcome["version"], "gold fixed")["sent"] == []
    finally:
        controller.stop()


def test_a_transient_refusal_of_one_address_is_retried_alone_by_the_next_try(scored, mailbox):
    recorder = BusyRecorder("carol@c.example")
    controller, port = start(recorder)
    try:
        error, _ = timed(publish, with_smtp(scored, settings(port, attempts=2)))
        assert isinstance(error, DeliveryError) and "451 4.2.1 mailbox busy" in str(error) and "1 e-mail(s) not sent (3 sent)" in str(error)
        assert sorted(m.recipients[0] for m in recorder.messages) == ["alice@a.example", "bounce@b.example", "dave@d.example"]
        assert recorder.tried.count("carol@c.example") == 2  # retried inside the send: the server had not taken it
    finally:
        controller.stop()
    report = publish(scored)  # the task's retry sends only what failed
    assert report["sent"] == ["team-c"] and [m.recipients[0] for m in mailbox.messages] == ["carol@c.example"]


# --- item 5: a server that is down, or accepts and never answers --------------------------------------


def test_with_the_server_down_the_stage_stops_at_the_first_failure_and_the_retry_sends_only_what_is_missing(scored, mailbox):
    down = with_smtp(scored, settings(free_port(), attempts=2))
    error, seconds = timed(publish, down)
    assert isinstance(error, DeliveryError)
    text = str(error)
    assert text.startswith("results of gans-detection: 4 e-mail(s) not sent (0 sent)")
    assert "Connection refused" in text and "3 more not tried after that failure" in text
    assert seconds < 3 and outbox_states(scored, "results") == {}

    report = publish(scored)  # the task's retry, with the server back
    assert sorted(report["sent"]) == ["team-a", "team-b", "team-c", "team-d"]
    assert publish(scored)["sent"] == []
    assert sorted(m.recipients[0] for m in mailbox.messages) == TEAM_ADDRESSES


def test_a_server_that_accepts_and_never_answers_costs_one_timeout_per_stage_and_loses_nothing(scored, mailbox):
    with ScriptedSmtpServer("hang-at-greeting") as server:
        hung = with_smtp(scored, settings(server.port, timeout=1, connect_timeout=1, attempts=3))
        error, seconds = timed(publish, hung)
        assert isinstance(error, DeliveryError) and "no answer within 1 s" in str(error)
        assert "3 more not tried" in str(error)
        assert server.connections == 1 and seconds < 3.5  # one wait of 1 s, not 4 teams x 3 attempts
        error, seconds = timed(publish, hung)  # the next try meets the same server: again one wait
        assert isinstance(error, DeliveryError) and server.connections == 2 and seconds < 3.5
    assert outbox_states(scored, "results") == {}  # every claim released: nothing marked as sent
    assert sorted(publish(scored)["sent"]) == ["team-a", "team-b", "team-c", "team-d"]
    assert sorted(m.recipients[0] for m in mailbox.messages) == TEAM_ADDRESSES


def test_a_server_that_answers_slowly_forever_is_cut_off_after_the_longest_an_attempt_may_take(scored, mailbox):
    import threading

    outcome: list = []
    with ScriptedSmtpServer("trickle") as server:
        hung = with_smtp(scored, settings(server.port, timeout=0.5, connect_timeout=0.5, attempts=3))
        worker = threading.Thread(target=lambda: outcome.append(timed(publish, hung)), daemon=True)
        worker.start()
        worker.join(30)
        assert outcome, "the stage did not end within 30 s"
        error, seconds = outcome[0]
        assert isinstance(error, DeliveryError) and "still not done after 4.5 s" in str(error) and "3 more not tried" in str(error)
        assert server.connections == 1 and seconds < 8
    assert outbox_states(scored, "results") == {}
    assert sorted(publish(scored)["sent"]) == ["team-a", "team-b", "team-c", "team-d"]


# --- item 4: the connection dropped (or hung) after the message body ----------------------------------


@pytest.mark.parametrize("mode", ["drop-after-data", "hang-after-data"])
def test_a_message_whose_delivery_is_unknown_is_recorded_and_never_sent_twice(scored, mailbox, mode):
    with ScriptedSmtpServer(mode) as server:
        flaky = with_smtp(scored, settings(server.port, timeout=1, attempts=3))
        for attempt in range(1, 5):  # each try hands one message over, then stops
            outcome, seconds = timed(publish, flaky)
            if attempt < 4:  # the others were not tried: the task fails, and its retry goes on
                assert isinstance(outcome, DeliveryError) and f"{4 - attempt} more not tried" in str(outcome), outcome
            else:
                assert outcome["sent"] == [] and len(outcome["mail"]["unknown"]) == 4
            assert seconds < 3.5 and len(server.messages) == attempt  # no retry inside a send
        states = outbox_states(scored, "results")
        assert sorted(states) == TEAM_ADDRESSES and set(states.values()) == {"unknown"}
        # each message carried the Message-ID of its outbox key, all different
        from include.campaign.mail import message_id_for

        keys = [scored.outbox.key("results", f"{TASK}.{team}", email) for team, email in sorted(EMAILS.items())]
        assert sorted(server.message_ids()) == sorted(message_id_for(key, "lab@clef.example.org") for key in keys)
    report = publish(scored)  # with a good server: nothing is sent again, the organizers hear of the four
    assert report["sent"] == [] and len(report["mail"]["unknown"]) == 4
    [told] = mailbox.messages
    assert told.recipients == [ORGANIZER] and "Delivery unknown (4)" in told.body and "to send it again: delete" in told.body
    publish(scored)
    assert len(mailbox.messages) == 1
