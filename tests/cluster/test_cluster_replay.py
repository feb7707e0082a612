"""The distributed engine for real: a campaign replayed live on the local cluster equals its ``dag.test()`` replay.

The cluster (``devtools/cluster.py``): api-server, scheduler, dag-processor, triggerer, two Celery
workers on ``default`` and one on ``models``, PostgreSQL and Redis, moto S3 and an SMTP recorder. The
scheduler fires the milestones of a three-task campaign a minute apart; in the middle of scoring a
default worker is killed with SIGKILL and the scheduler is restarted; the results are approved
through the REST API. See ``conftest.py`` for the two replays.
"""
from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.cluster.campaign import MODEL_TASK, TASKS

pytestmark = pytest.mark.cluster
BOARD_ROW_KEYS = ("team", "run", "status", "rank", "metrics")


def _rows(board: dict) -> list[tuple]:
    return sorted(tuple(repr(row.get(key)) for key in BOARD_ROW_KEYS) for row in board["rows"])


def _recipients(message) -> str:
    return ", ".join(sorted(str(message["To"]).lower().split(", ")))


def _body(message) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def _receipts(messages) -> dict[str, list[tuple]]:
    """Per team address, the runs each run receipt lists: name, size and sha256 (not the upload times)."""
    found: dict[str, list[tuple]] = {}
    for message in messages:
        if "runs collected for" in str(message["Subject"]):
            lines = re.findall(r"^\s*- (\S+): (\d+) bytes, uploaded .*, sha256 ([0-9a-f]{64})$", _body(message), flags=re.M)
            found.setdefault(_recipients(message), []).append((str(message["Subject"]), sorted(lines)))
    return {address: sorted(receipts) for address, receipts in found.items()}


def _results(messages) -> dict[str, list[tuple]]:
    """Per team address, its results e-mails without the leaderboard link (a presigned URL)."""
    found: dict[str, list[tuple]] = {}
    for message in messages:
        if "your results in" in str(message["Subject"]):
            body = "\n".join(line for line in _body(message).splitlines() if "http" not in line and "this link works" not in line)
            found.setdefault(_recipients(message), []).append((str(message["Subject"]), body))
    return {address: sorted(items) for address, items in found.items()}


def _live_messages(replays):
    import email
    import email.policy

    return [email.message_from_bytes(m.raw, policy=email.policy.default) for m in replays["live"].messages]


def test_every_dag_run_succeeds(replays):
    live = replays["live"]
    assert [(r["dag_id"], r["dag_run_id"], r["state"]) for r in live.dag_runs if r["state"] != "success"] == []
    stages = Counter(r["dag_id"].split("_", 1)[1] for r in live.dag_runs)
    assert stages["scoring"] == 1 and stages["results"] == 1 and stages["run_collection"] == 1, stages
    assert [r for r in replays["baseline"]["dag_runs"] if r["state"] != "success"] == []


def test_leaderboards_equal_those_of_the_dag_test_replay(replays):
    live, baseline = replays["live"], replays["baseline"]
    assert set(live.leaderboards) == set(baseline["leaderboards"]) == set(TASKS)
    for task in TASKS:
        assert live.leaderboards[task]["ranked_by"] == baseline["leaderboards"][task]["ranked_by"], task
        assert _rows(live.leaderboards[task]) == _rows(baseline["leaderboards"][task]), task
    assert any(row["status"] == "ranked" for row in live.leaderboards["gans-detection"]["rows"])


def test_run_receipts_and_results_mails_equal_those_of_the_dag_test_replay(replays):
    live_messages, baseline_messages = _live_messages(replays), replays["baseline_mails"]
    live_receipts, baseline_receipts = _receipts(live_messages), _receipts(baseline_messages)
    assert live_receipts == baseline_receipts
    assert sum(len(r) for r in live_receipts.values()) >= 6  # six teams per task
    assert _results(live_messages) == _results(baseline_messages)
    assert _results(live_messages)


def test_no_message_is_sent_twice(replays):
    live = replays["live"]
    messages = _live_messages(replays)
    sent = Counter((_recipients(m), str(m["Subject"]), _body(m)) for m in messages)
    assert [key[:2] for key, count in sent.items() if count > 1] == []
    assert len(messages) == len(live.outbox_keys), "one outbox marker per message"
    purposes = Counter(key.split("/")[2] for key in live.outbox_keys)
    # Upload receipts come from the periodic submission check, which only the live clock fires (the
    # dag.test() replay plays milestones, not periodic DAGs): how many depends on when its period falls.
    # They are covered by the no-duplicate check above; every other purpose must match the replay.
    purposes.pop("upload-receipt", None)
    assert purposes == Counter(replays["baseline"]["mail_by_purpose"]), (purposes, replays["baseline"]["mail_by_purpose"])


def test_model_metrics_ran_on_the_models_queue_and_everything_else_on_default(replays):
    live = replays["live"]
    model_instances = []
    for (dag_id, run_id), instances in live.task_instances.items():
        for ti in instances:
            if ti["state"] in (None, "skipped", "removed") or not ti.get("hostname"):
                continue
            where = (dag_id, ti["task_id"], ti["map_index"], ti["queue"], ti["hostname"])
            if ti["task_id"] == "score_run_models":
                model_instances.append(ti)
                assert ti["queue"] == "models" and ti["hostname"] == replays["models_hostname"], where
            else:
                assert ti["queue"] == "default" and ti["hostname"] in replays["default_hostnames"], where
    assert model_instances, "the model part of the caption-prediction runs was scored by score_run_models"
    assert all(ti["rendered_map_index"].startswith(f"{MODEL_TASK}: ") for ti in model_instances)
    scored = [ti for (dag_id, _), tis in live.task_instances.items() if dag_id.endswith("_scoring") for ti in tis if ti["task_id"] == "score_run"]
    # Every run's CPU part (validation, the metrics without a model) is scored on default, the model task's too.
    assert scored and any(ti["rendered_map_index"].startswith(f"{MODEL_TASK}: ") for ti in scored)
    assert any(not ti["rendered_map_index"].startswith(MODEL_TASK) for ti in scored)


def test_a_worker_killed_in_the_middle_of_scoring_loses_nothing(replays):
    live = replays["live"]
    disturbance = live.disturbance
    assert disturbance.killed_worker and disturbance.running_on_killed, "a default worker was killed while it scored"
    assert disturbance.scheduler_restarted
    survivor = next(h for h in replays["default_hostnames"] if h != disturbance.killed_hostname)
    final = {(dag_id, ti["task_id"], ti["map_index"]): ti for (dag_id, _), tis in live.task_instances.items() for ti in tis}
    for victim in disturbance.running_on_killed:
        after = final[(victim["dag_id"], victim["task_id"], victim["map_index"])]
        assert after["state"] == "success" and after["try_number"] > victim["try_number"], after
        assert after["hostname"] == survivor, after
    for task in TASKS:
        evaluation, manifest = live.evaluations[task], live.manifests[task]
        assert evaluation["missing"] == [], task
        assert sorted((r["team"], r["run"]) for r in evaluation["runs"]) == sorted((c["team"], c["run"]) for c in manifest["collected"]), task


def test_the_results_approval_was_answered_through_the_rest_api(replays):
    live = replays["live"]
    assert live.approvals, "the organizer approved through PATCH .../hitlDetails"
    assert live.answered and all(d["chosen_options"] == ["Approve"] and d["responded_by_user"]["name"] == "admin" for d in live.answered.values()), live.answered
    results_mails = _results(_live_messages(replays))
    assert results_mails, "approving published the results and e-mailed the teams"
