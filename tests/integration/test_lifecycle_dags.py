"""A small campaign replayed through every lifecycle DAG with ``dag.test()``, against real S3 and SMTP.

Two tasks with different dates, five teams. The campaign's dates are set around the present, so the
object store's own upload times decide what is early, late or on time. The replay runs once in a
module fixture (about a minute of real time: it waits for the registration and run deadlines), then
every DAG run is replayed a second time; the tests below assert on what it left behind.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.airflow

UTC = dt.timezone.utc
CAMPAIGN = "lifecycle"
ORGANIZER = "chair@lab.example.org"
ANNOUNCE = "announce@list.example.org"
TEAMS = {  # contact e-mail -> (team name, tasks)
    "one@uni-one.example.org": ("Team One", ["alpha", "beta"]),
    "two@uni-two.example.org": ("Team Two", ["alpha", "beta"]),  # its alpha agreement is never approved
    "three@uni-three.example.org": ("Team Three", ["beta"]),
    "four@uni-four.example.org": ("Team Four", ["beta"]),  # registers after beta's development release
    "early@uni-early.example.org": ("Team Early", ["beta"]),  # before registration opens
}
LATE = "late@uni-late.example.org"  # after registration closes
INVALID = "invalid@uni-invalid.example.org"  # a malformed document


def _campaign_yaml(t0: dt.datetime, closing: dt.datetime) -> tuple[str, dict[str, dt.datetime]]:
    """Registration opens at t0 + 6 s; registration closes at ``closing``, then deadlines a few seconds apart."""
    at = lambda seconds: t0 + dt.timedelta(seconds=seconds)  # noqa: E731
    after = lambda seconds: closing + dt.timedelta(seconds=seconds)  # noqa: E731
    moments = {
        "registration_opens": at(6), "dev_data_release": at(8), "test_data_release": at(10), "registration_closes": closing,
        "run_deadline": after(3), "results_release": after(20), "working_notes_deadline": after(25), "notification": after(27),
        "camera_ready": after(29), "conference_start": after(31), "conference_end": after(33),
        "beta.dev_data_release": at(9), "beta.test_data_release": at(11), "beta.run_deadline": after(6),
    }
    stamp = lambda key: moments[key].isoformat()  # noqa: E731
    campaign = {
        "id": CAMPAIGN, "name": "Lifecycle Lab", "lab": "an integration-test lab", "timezone": "Europe/Madrid",
        "organizers": [{"name": "Chair", "email": ORGANIZER}], "contact_email": ORGANIZER, "announce_to": [ANNOUNCE],
        "schedule": {k: stamp(k) for k in moments if "." not in k},
        "reminders": {"working_notes_days_before": [0], "on_notification": True, "camera_ready_days_before": [0]},
        "links": {"download_expiry_hours": 2, "upload_expiry_hours": 3},
        "tasks": [
            {"id": "alpha", "title": "Alpha detection", "run_format": "gans-detection-csv", "metrics": ["gans_kappa"], "runs_allowed": 2, "requires_agreement": True},
            {"id": "beta", "title": "Beta pictograms", "run_format": "topicto-json", "metrics": ["picto_er"], "runs_allowed": 3,
             "schedule": {"dev_data_release": stamp("beta.dev_data_release"), "test_data_release": stamp("beta.test_data_release"), "run_deadline": stamp("beta.run_deadline")}},
        ],
    }
    return yaml.safe_dump(campaign, sort_keys=False), moments


def _wait_until(moment: dt.datetime) -> None:
    while (remaining := (moment - dt.datetime.now(UTC)).total_seconds() + 1.1) > 0:  # moto's clock has 1 s steps
        time.sleep(min(remaining, 1.0))


def _urls(body: str) -> list[str]:
    return re.findall(r"^(https?://\S+)\s*$", body, flags=re.MULTILINE)


def _put(url: str, data: bytes) -> None:
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(request, timeout=10).close()


def _bucket_state(store) -> list[tuple[str, str | None, str]]:
    return [(v.key, v.version_id, v.etag) for v in store.list_versions("")]


class Replay:
    """Everything the replay did and saw, for the tests to assert on."""

    def __init__(self, store, driver, recorder, moments):
        self.store, self.driver, self.recorder, self.moments = store, driver, recorder, moments
        self.runs: list[tuple[str, dt.datetime | None, dict | None]] = []
        self.results: dict[str, object] = {}
        self.staged: dict[str, bytes] = {}
        self.gold: dict[str, bytes] = {}

    def run(self, name: str, dag_id: str, logical_date=None, conf=None):
        result = self.driver.run(dag_id, logical_date, conf)
        self.runs.append((dag_id, logical_date, conf))
        self.results[name] = result
        return result

    def mail_to(self, address: str, subject_part: str = "") -> list:
        return [m for m in self.recorder.to(address) if subject_part in m.subject]

    def team_id(self, email: str) -> str:
        for key in self.store.list_keys(f"{CAMPAIGN}/registrations/teams/"):
            record = self.store.get_json(key)
            if record.get("contact_email") == email:
                return record["team_id"]
        raise AssertionError(f"no team record for {email}")


def _stage(store, task: str, split: str, files: dict[str, bytes], ground_truth: set[str]) -> None:
    prefix = f"{CAMPAIGN}/staging/{task}/{split}/"
    entries = []
    for path, data in files.items():
        store.put_bytes(prefix + path, data)
        entries.append({"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "ground_truth": path in ground_truth})
    store.put_json(prefix + "MANIFEST.json", {"files": entries})


def _register(store, name: str, email: str, tasks: list[str], **changes) -> None:
    agreements = {}
    for task in tasks:
        if task == "alpha":
            store.put_bytes(f"{CAMPAIGN}/registrations/agreements/{name}-alpha.pdf", b"%PDF-1.4 signed\n", content_type="application/pdf")
            agreements[task] = f"registrations/agreements/{name}-alpha.pdf"
    team_name = TEAMS.get(email, (name.title(), tasks))[0]
    document = {"team_name": team_name, "affiliation": "University", "country": "ES", "contact_name": "Contact", "contact_email": email, "tasks": tasks}
    if agreements:
        document["agreements"] = agreements
    document.update(changes)
    document = {k: v for k, v in document.items() if v is not None}
    key, raw = f"{CAMPAIGN}/registrations/inbox/{name}.json", json.dumps(document).encode()
    store.put_bytes(key, raw, content_type="application/json")
    if isinstance(document.get("contact_email"), str):  # its contact opened the confirmation link (confirmation.py)
        from include.campaign.confirmation import document_digest
        from include.campaign.layout import Layout

        store.create_json_once(Layout(CAMPAIGN).confirmation_record(document_digest(key, raw)), {"contact_email": document["contact_email"], "how": "test"})


@pytest.fixture(scope="module")
def replay(s3_endpoint, airflow_home, tmp_path_factory):
    from devtools.dag_driver import DagDriver
    from include.campaign.store import ObjectStore, S3Settings
    from devtools.devstack import MailRecorder, free_port, smtp_connection_json, start_smtp_server

    saved = {k: os.environ.get(k) for k in ("CLEF_BUCKET", "AIRFLOW_CONN_SMTP_DEFAULT", "CLEF_RETRY_DELAY_SECONDS", "CLEF_CAMPAIGNS_DIR")}
    bucket = "clef-lifecycle-replay"
    store = ObjectStore(S3Settings(bucket=bucket, endpoint_url=s3_endpoint, access_key_id="k", secret_access_key="s"))
    store.ensure_bucket(versioning=True)
    recorder, port = MailRecorder(), free_port()
    smtp, _ = start_smtp_server(recorder, port)
    os.environ.update({"CLEF_BUCKET": bucket, "AIRFLOW_CONN_SMTP_DEFAULT": smtp_connection_json("127.0.0.1", port), "CLEF_RETRY_DELAY_SECONDS": "1"})

    t0 = dt.datetime.now(UTC).replace(microsecond=0)
    campaigns = tmp_path_factory.mktemp("campaigns")
    text, moments = _campaign_yaml(t0, closing=t0 + dt.timedelta(hours=1))
    (campaigns / f"{CAMPAIGN}.yaml").write_text(text)
    _register(store, "early", "early@uni-early.example.org", ["beta"])  # before opening
    driver = DagDriver(campaigns)
    r = Replay(store, driver, recorder, moments)
    reg, intake, approval = f"{CAMPAIGN}_registration", f"{CAMPAIGN}_registration_intake", f"{CAMPAIGN}_agreement_approval"
    release, collection, notes = f"{CAMPAIGN}_data_release", f"{CAMPAIGN}_run_collection", f"{CAMPAIGN}_working_notes"
    try:
        # staged data: alpha's development split carries a ground-truth file the release must keep back
        r.staged = {"alpha/dev/images/1.png": b"\x89PNG one", "alpha/dev/labels_dev.csv": b"id,label\n1,0\n", "alpha/dev/answers/test_labels.csv": b"id,label\nt1,1\n",
                    "alpha/test/images/t1.png": b"\x89PNG t1", "beta/dev/sentences.json": b'[{"id":"d1","src":"bonjour"}]', "beta/test/sentences.json": b'[{"id":"t1","src":"salut"}]'}
        for task, split in (("alpha", "dev"), ("alpha", "test"), ("beta", "dev"), ("beta", "test")):
            files = {k.split("/", 2)[2]: v for k, v in r.staged.items() if k.startswith(f"{task}/{split}/")}
            _stage(store, task, split, files, ground_truth={"answers/test_labels.csv"})
        r.gold = {f"{CAMPAIGN}/gold/alpha/test/labels.csv": b"id,label\nt1,1\n", f"{CAMPAIGN}/gold/beta/test/references.json": b'[{"id":"t1","ref":"bonjour"}]'}
        for key, data in r.gold.items():
            store.put_bytes(key, data)

        _wait_until(moments["registration_opens"])
        r.run("open", reg, moments["registration_opens"])
        for name, email in (("one", "one@uni-one.example.org"), ("two", "two@uni-two.example.org"), ("three", "three@uni-three.example.org")):
            _register(store, name, email, TEAMS[email][1])
        _register(store, "invalid", INVALID, ["beta"], country="Spain", contact_name=None)
        r.run("intake-1", intake, moments["registration_opens"] + dt.timedelta(seconds=1))
        r.run("approve-one", approval, conf={"team_id": r.team_id("one@uni-one.example.org"), "tasks": ["alpha"], "decision": "approve", "note": "signed"})
        r.run("release-alpha-dev", release, moments["dev_data_release"])
        r.run("release-beta-dev", release, moments["beta.dev_data_release"])
        _register(store, "four", "four@uni-four.example.org", ["beta"])  # after beta's development release
        r.run("intake-2", intake, moments["registration_opens"] + dt.timedelta(seconds=2))
        r.run("release-alpha-test", release, moments["test_data_release"])

        smtp.stop()  # the mail server goes down during beta's test release
        r.results["smtp-down"] = driver.run(release, moments["beta.test_data_release"])
        r.mails_while_down = len(recorder.messages)
        smtp, _ = start_smtp_server(recorder, port)
        r.run("release-beta-test", release, moments["beta.test_data_release"])

        # runs, uploaded through the links the teams received
        links = {}
        for email in ("one@uni-one.example.org", "three@uni-three.example.org", "four@uni-four.example.org"):
            for message in recorder.to(email):
                if "upload links" in message.subject:
                    task = "alpha" if "alpha" in message.subject else "beta"
                    links[(email, task)] = {url.split("?")[0].rsplit("/", 1)[1]: url for url in _urls(message.body)}
        r.links = links
        one, three, four = (r.team_id(e) for e in ("one@uni-one.example.org", "three@uni-three.example.org", "four@uni-four.example.org"))
        _put(links[("one@uni-one.example.org", "alpha")]["run-01"], b"t1,1\n")
        _put(links[("one@uni-one.example.org", "alpha")]["run-02"], b"t1,0\n")
        store.put_bytes(f"{CAMPAIGN}/submissions/alpha/{one}/run-03", b"t1,1\n")  # beyond the two runs allowed
        _put(links[("three@uni-three.example.org", "beta")]["run-01"], b'[{"id":"t1","hyp":"bonjour"}]')
        _put(links[("four@uni-four.example.org", "beta")]["run-01"], b'[{"id":"t1","hyp":"salut"}]')
        store.put_bytes(f"{CAMPAIGN}/submissions/beta/team-stranger/run-01", b"[]")  # no such team

        # Every run is up: the organizers bring registration closing and the deadlines forward to a few
        # seconds from now (an edit of the campaign file, re-parsed like the DAG processor would), so
        # the test need not sit idle for an hour, and the store's upload times still decide what is late.
        text, moments = _campaign_yaml(t0, closing=dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(seconds=3))
        (campaigns / f"{CAMPAIGN}.yaml").write_text(text)
        r.driver = driver = DagDriver(campaigns)
        r.moments = moments
        _wait_until(moments["registration_closes"])
        _register(store, "late", LATE, ["beta"])
        r.run("close", reg, moments["registration_closes"])

        _wait_until(moments["run_deadline"])
        _put(links[("one@uni-one.example.org", "alpha")]["run-02"], b"t1,1\n")  # after alpha's deadline
        r.run("collect-alpha", collection, moments["run_deadline"])
        _wait_until(moments["beta.run_deadline"])
        _put(links[("three@uni-three.example.org", "beta")]["run-01"], b'[{"id":"t1","hyp":"overwritten late"}]')
        r.run("collect-beta", collection, moments["beta.run_deadline"])
        for name in ("working_notes_deadline", "notification", "camera_ready"):
            r.run(f"remind-{name}", notes, moments[name])

        # the whole replay again: same objects, no new mail
        r.state_after_first = _bucket_state(store)
        r.mail_after_first = len(recorder.messages)
        r.second = [driver.run(dag_id, logical_date, conf) for dag_id, logical_date, conf in r.runs]
        r.state_after_second = _bucket_state(store)
        r.mail_after_second = len(recorder.messages)
        yield r
    finally:
        smtp.stop(no_assert=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_every_dag_run_succeeded(replay):
    failed = {name: result.failed_tasks() for name, result in replay.results.items() if name != "smtp-down" and not result.ok}
    assert failed == {}
    assert all(result.ok for result in replay.second), [(r.dag_id, r.failed_tasks()) for r in replay.second if not r.ok]


def test_opening_is_announced(replay):
    assert len(replay.mail_to(ANNOUNCE, "registration is open")) == 1
    assert len(replay.mail_to(ORGANIZER, "registration is open")) == 1


def test_early_late_and_invalid_registrations_are_rejected_with_a_reason(replay):
    store = replay.store
    reasons = {}
    for key in store.list_keys(f"{CAMPAIGN}/registrations/rejected/"):
        if key.endswith("reason.json"):
            record = store.get_json(key)
            reasons[record["document"].rsplit("/", 1)[1]] = " ".join(record["reasons"])
    assert set(reasons) == {"early.json", "late.json", "invalid.json"}
    assert "opens on" in reasons["early.json"] and "before that" in reasons["early.json"]
    assert "closed on" in reasons["late.json"] and "after that" in reasons["late.json"]
    assert "country" in reasons["invalid.json"] and "contact_name" in reasons["invalid.json"]
    for email in ("early@uni-early.example.org", LATE, INVALID):
        [answer] = replay.mail_to(email, "could not be accepted")
        assert "line" in answer.body or "opens" in answer.body or "closed" in answer.body
    assert store.list_keys(f"{CAMPAIGN}/registrations/inbox/") == []


def test_confirmed_teams_have_stable_records(replay):
    records = [replay.store.get_json(k) for k in replay.store.list_keys(f"{CAMPAIGN}/registrations/teams/")]
    assert sorted(r["contact_email"] for r in records) == sorted(e for e in TEAMS if not e.startswith("early"))
    for email in ("one@uni-one.example.org", "two@uni-two.example.org", "three@uni-three.example.org", "four@uni-four.example.org"):
        assert len(replay.mail_to(email, "confirmed")) == 1


def test_the_unapproved_team_receives_no_alpha_data(replay):
    two = "two@uni-two.example.org"
    assert replay.mail_to(two, "data of alpha") == [] and replay.mail_to(two, "upload links for alpha") == []
    assert len(replay.mail_to(two, "data of beta")) == 2  # beta needs no agreement
    assert len(replay.mail_to("one@uni-one.example.org", "data of alpha")) == 2


def test_presigned_links_download_the_exact_staged_bytes(replay):
    [message] = replay.mail_to("one@uni-one.example.org", "development data of alpha")
    downloaded = {}
    for url in replay_urls(message):
        with urllib.request.urlopen(url, timeout=10) as answer:
            downloaded[url.split("?")[0].split("/releases/alpha/dev/")[1]] = answer.read()
    assert downloaded == {"images/1.png": replay.staged["alpha/dev/images/1.png"], "labels_dev.csv": replay.staged["alpha/dev/labels_dev.csv"]}


def replay_urls(message) -> list[str]:
    return _urls(message.body)


def test_no_gold_or_ground_truth_is_ever_released(replay):
    released = {k: replay.store.get_bytes(k) for k in replay.store.list_keys(f"{CAMPAIGN}/releases/") if not k.endswith(".json") or "/dev/" in k or "/test/" in k}
    gold_bytes = set(replay.gold.values()) | {replay.staged["alpha/dev/answers/test_labels.csv"]}
    assert released and not any(data in gold_bytes for data in released.values())
    assert not any("answers/" in key for key in released)


def test_a_late_registrant_receives_the_earlier_release(replay):
    four = "four@uni-four.example.org"
    assert len(replay.mail_to(four, "development data of beta")) == 1
    assert len(replay.mail_to(four, "test data of beta")) == 1


def test_collection_keeps_pre_deadline_versions_and_reports_late_refused_and_over_limit(replay):
    store = replay.store
    alpha = store.get_json(f"{CAMPAIGN}/collected/alpha/manifest.json")
    beta = store.get_json(f"{CAMPAIGN}/collected/beta/manifest.json")
    one = replay.team_id("one@uni-one.example.org")
    three = replay.team_id("three@uni-three.example.org")
    collected_alpha = {(e["team"], e["run"]): e for e in alpha["collected"]}
    assert set(collected_alpha) == {(one, "run-02"), (one, "run-03")}  # the two latest of three
    assert [(e["team"], e["run"]) for e in alpha["dropped_over_limit"]] == [(one, "run-01")]
    assert [(e["team"], e["run"]) for e in alpha["late"]] == [(one, "run-02")]
    assert store.get_bytes(collected_alpha[(one, "run-02")]["key"]) == b"t1,0\n"  # the version before the deadline
    collected_beta = {(e["team"], e["run"]): e for e in beta["collected"]}
    assert store.get_bytes(collected_beta[(three, "run-01")]["key"]) == b'[{"id":"t1","hyp":"bonjour"}]'
    assert collected_beta[(three, "run-01")]["sha256"] == hashlib.sha256(b'[{"id":"t1","hyp":"bonjour"}]').hexdigest()
    assert [(e["team"], e["run"]) for e in beta["late"]] == [(three, "run-01")]
    assert [e["team"] for e in beta["refused"]] == ["team-stranger"]
    [receipt] = replay.mail_to("one@uni-one.example.org", "runs collected for alpha")
    assert "run-01" in receipt.body and "run-02" in receipt.body and "run-03" in receipt.body


def test_reminders_reach_exactly_the_teams_with_runs(replay):
    with_runs = {"one@uni-one.example.org", "three@uni-three.example.org", "four@uni-four.example.org"}
    reminded = {}
    for message in replay.recorder.messages:
        if "remind" in message.subject.lower() or "working notes" in message.subject.lower() or "camera" in message.subject.lower():
            for recipient in message.recipients:
                reminded[recipient] = reminded.get(recipient, 0) + 1
    assert set(reminded) == with_runs
    assert all(count == 3 for count in reminded.values()), reminded


def test_a_second_replay_changes_no_object_and_sends_no_mail(replay):
    assert replay.state_after_second == replay.state_after_first
    assert replay.mail_after_second == replay.mail_after_first


def test_a_release_with_smtp_down_fails_after_retries_then_sends_each_missing_mail_once(replay):
    down = replay.results["smtp-down"]
    assert down.state == "failed" and down.failed_tasks() == ["release_task_data[0]"]
    assert replay.mails_while_down == len([m for m in replay.recorder.messages if m is not None][: replay.mails_while_down])
    for email in ("one@uni-one.example.org", "two@uni-two.example.org", "three@uni-three.example.org", "four@uni-four.example.org"):
        assert len(replay.mail_to(email, "test data of beta")) == 1
        assert len(replay.mail_to(email, "upload links for beta")) == 1


def test_dags_list_shows_the_campaign_dags_with_next_run_dates(replay):
    import subprocess
    import sys

    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "dags", "list", "-o", "json", "--columns", "dag_id,next_dagrun_logical_date"], env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("[")))
    listed = {row["dag_id"]: row["next_dagrun_logical_date"] for row in rows}
    for stage in ("registration", "data_release", "run_collection", "working_notes"):
        assert listed[f"{CAMPAIGN}_{stage}"], stage
