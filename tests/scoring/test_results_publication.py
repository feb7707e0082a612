"""Results day over real S3 and SMTP: one e-mail per team with only its runs, publication once, re-score notices."""
from __future__ import annotations

import json
import re
import urllib.request

import pytest

from include.campaign import results, evaluation
from scoring_fixtures import GANS_GOLD, collect, gans_gold, gans_run, register, score_task, stage_gold

TASK = "gans-detection"
RUNS = {
    ("team-a", "alpha-perfect"): gans_run(GANS_GOLD),
    ("team-a", "alpha-broken"): gans_run({"1": "yes"}),
    ("team-b", "bravo-net"): gans_run({**GANS_GOLD, "7": 0, "8": 1}),
    ("team-c", "charlie-svm"): gans_run({**GANS_GOLD, "5": 0, "6": 1}),
}
EMAILS = {"team-a": "alice@a.example", "team-b": "bob@b.example", "team-c": "carol@c.example"}


@pytest.fixture
def scored(mail_ctx):
    stage_gold(mail_ctx, TASK, gans_gold())
    collect(mail_ctx, TASK, RUNS)
    for team, email in EMAILS.items():
        register(mail_ctx, team, email)
    score_task(mail_ctx, TASK)
    return mail_ctx


def body_of(mailbox, address):
    messages = mailbox.to(address)
    assert len(messages) == 1, f"{address} received {len(messages)} messages"
    return messages[0].subject, messages[0].body


def test_the_summary_shows_the_organizer_counts_top_runs_and_publication_state(scored):
    text = results.summary(scored, TASK)
    assert "Evaluation v0001" in text and "runs collected" in text
    assert "4 runs from 3 teams: 3 ranked, 0 valid but not ranked, 1 invalid" in text
    assert re.search(r"1  team-a / alpha-perfect  1\.0000", text)
    assert "Not published yet" in text


def test_publishing_mails_each_team_once_with_only_its_own_runs(scored, mailbox):
    report = results.publish(scored, TASK, approved_by="olga")
    assert sorted(report["sent"]) == ["team-a", "team-b", "team-c"] and len(mailbox.messages) == 3
    board = scored.store.get_json(scored.layout.leaderboards(TASK, "v0001") + "leaderboard.json")
    rows = {row["run"]: row for row in board["rows"]}
    for team, email in EMAILS.items():
        subject, body = body_of(mailbox, email)
        assert "your results in GANs & detection" in subject
        own = [run for (t, run) in RUNS if t == team]
        others = [run for (t, run) in RUNS if t != team]
        for run in own:
            assert f"Run {run}:" in body
            if rows[run]["status"] == "ranked":
                assert f"rank {rows[run]['rank']}" in body
                assert f"gans_kappa: {rows[run]['metrics']['gans_kappa']:.4f}" in body
        assert not any(run in body for run in others)
        assert f"ranks {board['team_ranks'][team]} of 3 ranked teams" in body and "(3 teams took part)" in body
    _, alice = body_of(mailbox, EMAILS["team-a"])
    assert "Run alpha-broken: not scored" in alice and "label.allowed" in alice

    link = re.search(r"The full leaderboard: (\S+)", alice).group(1)
    with urllib.request.urlopen(link, timeout=10) as answer:  # the presigned link serves the public page
        page = answer.read().decode()
    assert "alpha-perfect" in page and "charlie-svm" in page
    public = scored.store.list_keys(scored.layout.public_leaderboards(TASK))
    assert {key.rsplit("/", 1)[-1] for key in public} == {"leaderboard.csv", "leaderboard.json", "leaderboard.html", "leaderboard.tex", "leaderboard-figure.pdf"}
    assert results.published(scored, TASK)["version"] == "v0001" and results.published(scored, TASK)["approved_by"] == "olga"

    mailbox.clear()
    again = results.publish(scored, TASK, approved_by="olga")
    assert again["sent"] == [] and sorted(again["already_sent"]) == ["team-a", "team-b", "team-c"]
    assert mailbox.messages == []
    assert "Already published (v0001" in results.summary(scored, TASK)


def test_a_public_base_url_replaces_the_presigned_link_and_a_team_without_contact_is_reported(scored, mailbox):
    scored.store.delete(scored.layout.team_record("team-c"))
    report = results.publish(scored, TASK, approved_by="olga", public_base_url="https://results.example.org/")
    assert sorted(report["sent"]) == ["team-a", "team-b"]
    assert report["unreachable"] == [{"team": "team-c", "reason": "no contact e-mail in democlef/registrations/teams/team-c.json"}]
    _, body = body_of(mailbox, EMAILS["team-b"])
    assert "https://results.example.org/democlef/public/leaderboards/gans-detection/leaderboard.html" in body


def test_a_rescore_before_publication_mails_nobody_and_stays_private(scored, mailbox):
    stage_gold(scored, TASK, gans_gold({**GANS_GOLD, "8": 1}))
    outcome = score_task(scored, TASK, reason="gold fixed", by="olga", teams="team-b")
    report = results.notify_rescore(scored, TASK, outcome["version"], "gold fixed")
    assert report["published"] is False and mailbox.messages == []
    assert scored.store.list_keys(scored.layout.public_leaderboards(TASK)) == []


def test_a_rescore_after_publication_mails_only_the_teams_whose_scores_changed(scored, mailbox):
    results.publish(scored, TASK, approved_by="olga")
    mailbox.clear()
    stage_gold(scored, TASK, gans_gold({**GANS_GOLD, "8": 1}))  # bravo-net predicted 1 for image 8
    outcome = score_task(scored, TASK, reason="gold label of image 8 corrected", by="olga", teams=["team-b", "team-c"])
    assert outcome["changed"] == ["team-b/bravo-net", "team-c/charlie-svm"]
    scored.store.put_bytes(scored.layout.collected(TASK) + "unused", b"")  # unrelated objects do not matter

    report = results.notify_rescore(scored, TASK, outcome["version"], "gold label of image 8 corrected")
    assert sorted(report["sent"]) == ["team-b", "team-c"] and len(mailbox.messages) == 2
    assert mailbox.to(EMAILS["team-a"]) == []
    old = evaluation.read_evaluation(scored, TASK, "v0001")["runs"]
    new = evaluation.read_evaluation(scored, TASK, "v0002")["runs"]
    kappa = {(r["run"], version): r["metrics"]["gans_kappa"] for version, runs in (("old", old), ("new", new)) for r in runs if r["verdict"] == "valid"}
    subject, body = body_of(mailbox, EMAILS["team-b"])
    assert "your scores in GANs & detection changed" in subject
    assert "Why: gold label of image 8 corrected" in body
    assert f"gans_kappa: {kappa[('bravo-net', 'old')]:.4f} -> {kappa[('bravo-net', 'new')]:.4f}" in body
    assert "from evaluation v0001 to v0002" in body
    assert "charlie-svm" not in body and "alpha" not in body
    public_board = json.loads(scored.store.get_bytes(scored.layout.public_leaderboards(TASK) + "leaderboard.json"))
    assert public_board["version"] == "v0002" and results.published(scored, TASK)["since"] == "v0001"

    mailbox.clear()
    assert results.notify_rescore(scored, TASK, outcome["version"], "retry")["sent"] == []
    assert results.publish(scored, TASK, approved_by="olga")["sent"] == [] and mailbox.messages == []
    with pytest.raises(results.ResultsError, match="v0002 is published; v0001 is older"):
        results.notify_rescore(scored, TASK, "v0001", "going back")


def test_publish_after_an_unnotified_rescore_tells_the_changed_teams(scored, mailbox):
    results.publish(scored, TASK, approved_by="olga")
    mailbox.clear()
    stage_gold(scored, TASK, gans_gold({**GANS_GOLD, "8": 1}))
    score_task(scored, TASK, reason="gold fixed", by="olga", teams="team-b")
    report = results.publish(scored, TASK, approved_by="olga")
    assert report["sent"] == ["team-b"] and len(mailbox.messages) == 1
    assert "changed" in mailbox.messages[0].subject


def test_nothing_to_publish_is_a_clear_error(mail_ctx):
    with pytest.raises(results.ResultsError, match="no complete evaluation to publish; run the scoring DAG first"):
        results.publish(mail_ctx, TASK, approved_by="olga")
    assert "no complete evaluation yet" in results.summary(mail_ctx, TASK)


def test_a_run_made_valid_by_a_gold_fix_is_told_it_is_now_scored(mail_ctx, mailbox):
    with_nine = {**GANS_GOLD, "9": 1}
    stage_gold(mail_ctx, TASK, gans_gold())
    collect(mail_ctx, TASK, {("team-a", "alpha"): gans_run(GANS_GOLD), ("team-b", "bravo-nine"): gans_run(with_nine)})
    for team in ("team-a", "team-b"):
        register(mail_ctx, team, EMAILS[team])
    score_task(mail_ctx, TASK)
    results.publish(mail_ctx, TASK, approved_by="olga")
    mailbox.clear()
    stage_gold(mail_ctx, TASK, gans_gold(with_nine))  # image 9 had been left out of the gold
    outcome = score_task(mail_ctx, TASK, reason="image 9 added to the gold", by="olga", teams="team-b")
    assert results.notify_rescore(mail_ctx, TASK, outcome["version"], "image 9 added to the gold")["sent"] == ["team-b"]
    _, body = body_of(mailbox, EMAILS["team-b"])
    assert "verdict: invalid -> valid" in body and "gans_kappa: not scored -> 1.0000" in body
    assert "rank: not ranked -> 1" in body


def test_results_wait_until_the_latest_collection_is_scored(ctx):
    import time

    from include.campaign.results import scoring_pending
    from scoring_fixtures import collect, gans_gold, gans_run, score_task, stage_gold

    assert scoring_pending(ctx, ["gans-detection"]) == []  # nothing collected: nothing to wait for
    stage_gold(ctx, "gans-detection", gans_gold())
    collect(ctx, "gans-detection", {("team-a", "run-01"): gans_run({"1": 0, "2": 1, "3": 1, "4": 0, "5": 1, "6": 0, "7": 1, "8": 0})})
    assert scoring_pending(ctx, ["gans-detection"]) == ["gans-detection"]
    time.sleep(1.1)  # the store's clock has one-second steps
    score_task(ctx, "gans-detection")
    assert scoring_pending(ctx, ["gans-detection"]) == []
    time.sleep(1.1)
    collect(ctx, "gans-detection", {("team-a", "run-01"): gans_run({"1": 1, "2": 1, "3": 1, "4": 0, "5": 1, "6": 0, "7": 1, "8": 0})})
    assert scoring_pending(ctx, ["gans-detection"]) == ["gans-detection"]  # collected again, not yet re-scored
