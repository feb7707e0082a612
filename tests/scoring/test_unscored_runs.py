"""A run whose scoring task died never disappears: the approval names it, its team is told why."""
from __future__ import annotations

from include.campaign import results, evaluation
from scoring_fixtures import GANS_GOLD, collect, gans_gold, gans_run, register, stage_gold

TASK = "gans-detection"
RUNS = {
    ("team-a", "alpha"): gans_run(GANS_GOLD),
    ("team-b", "bravo-1"): gans_run({**GANS_GOLD, "7": 0}),
    ("team-b", "bravo-2"): gans_run({**GANS_GOLD, "8": 1}),  # its scoring task dies
    ("team-c", "charlie"): gans_run({**GANS_GOLD, "5": 0}),  # its scoring task dies: team-c has no score at all
}
DIED = {("team-b", "bravo-2"), ("team-c", "charlie")}
EMAILS = {"team-a": "alice@a.example", "team-b": "bob@b.example", "team-c": "carol@c.example"}


def score_with_dead_tasks(ctx, dead=DIED, reason="runs collected", teams=None) -> dict:
    """What the scoring DAG does when some mapped ``score_run`` instances fail: no summary for them."""
    planned = evaluation.plan(ctx, TASK, teams)
    version = evaluation.new_version(ctx, TASK, reason, "asset runs/test")
    summaries = [None if (item["team"], item["run"]) in dead else evaluation.score_one(ctx, TASK, version, item) for item in planned]
    return evaluation.finalize(ctx, TASK, version, summaries, reason, "asset runs/test", planned=planned)


def prepared(ctx):
    stage_gold(ctx, TASK, gans_gold())
    collect(ctx, TASK, RUNS)
    for team, email in EMAILS.items():
        register(ctx, team, email)
    return score_with_dead_tasks(ctx)


def test_a_run_whose_scoring_task_died_is_listed_with_the_reason(mail_ctx):
    outcome = prepared(mail_ctx)
    assert outcome["missing"] == ["team-b/bravo-2", "team-c/charlie"]
    missing = evaluation.read_evaluation(mail_ctx, TASK, outcome["version"])["missing"]
    assert all("scoring stopped before it produced a score" in m["reason"] and m["since"] == "v0001" for m in missing)


def test_the_approval_summary_names_every_unscored_run_for_the_organizer_to_decide(mail_ctx):
    prepared(mail_ctx)
    text = results.summary(mail_ctx, TASK)
    assert "NOT SCORED: 2 collected run(s) of 2 team(s) have no score in v0001" in text
    assert "team-b / bravo-2: its scoring stopped before it produced a score" in text and "team-c / charlie" in text
    assert "trigger democlef_scoring by hand with task gans-detection, teams team-b, team-c, runs team-b/bravo-2, team-c/charlie" in text


def test_each_team_is_told_which_run_was_not_scored_and_why(mail_ctx, mailbox):
    prepared(mail_ctx)
    report = results.publish(mail_ctx, TASK, approved_by="olga")
    assert sorted(report["sent"]) == ["team-a", "team-b", "team-c"]  # team-c has no score, and is told so
    [bob] = mailbox.to(EMAILS["team-b"])
    assert "Run bravo-1: rank" in bob.body
    assert "Run bravo-2: not scored" in bob.body and "its scoring stopped before it produced a score" in bob.body
    [carol] = mailbox.to(EMAILS["team-c"])
    assert "Run charlie: not scored" in carol.body and "No run of your team is ranked" in carol.body
    [alice] = mailbox.to(EMAILS["team-a"])
    assert "not scored" not in alice.body and "bravo" not in alice.body and "charlie" not in alice.body


def test_a_rescore_of_the_unscored_runs_completes_the_evaluation_and_tells_those_teams(mail_ctx, mailbox):
    prepared(mail_ctx)
    results.publish(mail_ctx, TASK, approved_by="olga")
    mailbox.clear()
    outcome = score_with_dead_tasks(mail_ctx, dead=set(), reason="the scoring tasks that died", teams=["team-b", "team-c"])
    assert outcome["missing"] == []
    report = results.notify_rescore(mail_ctx, TASK, outcome["version"], "the scoring tasks that died")
    assert sorted(report["sent"]) == ["team-b", "team-c"]
    [carol] = mailbox.to(EMAILS["team-c"])
    assert "Run charlie: newly scored." in carol.body
    assert "NOT SCORED" not in results.summary(mail_ctx, TASK)


def test_a_run_still_unscored_in_a_later_version_keeps_its_reason_and_since(mail_ctx):
    prepared(mail_ctx)
    outcome = score_with_dead_tasks(mail_ctx, dead=set(), reason="team-a asked", teams=["team-a"])
    missing = {(m["team"], m["run"]): m for m in evaluation.read_evaluation(mail_ctx, TASK, outcome["version"])["missing"]}
    assert set(missing) == DIED and {m["since"] for m in missing.values()} == {"v0001"}
    assert "missing since v0001" in results.summary(mail_ctx, TASK)


def test_a_rescore_whose_task_died_keeps_no_older_score_and_names_the_run(mail_ctx):
    stage_gold(mail_ctx, TASK, gans_gold())
    collect(mail_ctx, TASK, RUNS)
    for team, email in EMAILS.items():
        register(mail_ctx, team, email)
    score_with_dead_tasks(mail_ctx, dead=set())
    stage_gold(mail_ctx, TASK, gans_gold({**GANS_GOLD, "8": 1}))  # the gold changed: the old score of bravo-2 is wrong now
    outcome = score_with_dead_tasks(mail_ctx, dead={("team-b", "bravo-2")}, reason="gold fixed", teams=["team-b"])
    assert outcome["missing"] == ["team-b/bravo-2"]
    runs = {(r["team"], r["run"]): r for r in evaluation.read_evaluation(mail_ctx, TASK, outcome["version"])["runs"]}
    assert ("team-b", "bravo-2") not in runs and runs[("team-a", "alpha")]["scored_in"] == "v0001"
    assert "team-b / bravo-2: its scoring stopped" in results.summary(mail_ctx, TASK)
