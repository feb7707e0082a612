"""Results on the portal: a team sees nothing of its scores or of other teams before publication;
after it, its own runs' scores and its rank on its page, and the public leaderboard on the campaign page."""
from __future__ import annotations

import dataclasses
import datetime as dt

from include.campaign import collection, results, evaluation

from tests.portal.conftest import register_team, sign_in, stage_and_release, valid_run


def _score(ctx, task_id: str) -> dict:
    """What the collection and scoring DAGs do at the deadline, with the clock just after it."""
    later = dataclasses.replace(ctx, clock=lambda: ctx.campaign.milestone_time("run_deadline", task_id) + dt.timedelta(minutes=1))
    collection.collect(later, task_id)
    version = evaluation.new_version(later, task_id, "deadline", "test")
    summaries = [evaluation.score_one(later, task_id, version, item) for item in evaluation.plan(later, task_id)]
    return evaluation.finalize(later, task_id, version, summaries, "deadline", "test")


def test_scores_and_rank_appear_only_after_publication_and_only_the_teams_own(client, ctx, store, mailbox):
    team_a = register_team(client, ctx, mailbox, tasks=("beta",))
    team_b = register_team(client, ctx, mailbox, team="Rival Team", email="lead@rival.example.org", tasks=("beta",))
    stage_and_release(ctx, "beta", "test")
    store.put_bytes(ctx.layout.submissions("beta", team_a) + "run-01", valid_run())
    flipped = b"".join(line[:-1] + (b"1" if line.endswith(b"0") else b"0") + b"\n" for line in valid_run().splitlines())
    store.put_bytes(ctx.layout.submissions("beta", team_b) + "run-01", flipped)
    _score(ctx, "beta")

    client.cookies.clear()
    sign_in(client, mailbox, "lead@alpha.example.org")
    before = client.get("/c/portallab/team").text
    assert "Results" not in before and "rank" not in before.lower().replace("ranked", "")
    assert client.get("/c/portallab/leaderboards/beta").status_code == 404
    assert "Leaderboard" not in client.get("/c/portallab").text

    results.publish(ctx, "beta", approved_by="chair")
    after = client.get("/c/portallab/team").text
    assert "Your team's rank: <strong>1</strong> of 2 teams" in after
    assert team_b not in after and "Rival Team" not in after  # only the team's own rows
    board = client.get("/c/portallab/leaderboards/beta")
    assert board.status_code == 200 and team_a in board.text and team_b in board.text
    assert 'href="/c/portallab/leaderboards/beta"' in client.get("/c/portallab").text
