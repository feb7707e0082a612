"""A real browser signs in to a real Airflow api-server, opens Campaigns, approves an agreement and reads the panels.

``airflow api-server`` runs as its own process on loopback with this project's DAGs and plugins (the
same settings ``make demo`` gives Airflow), Simple auth manager with one organizer. The campaign's
state is built through the domain code (intake, decisions, uploads, collection, scoring) in the moto
S3 server. Playwright drives Debian's ``/usr/bin/chromium`` (installed by ``scripts/install_chromium.sh``,
which ``make test`` runs). It checks what a built state shows (a first problem with its line, the
viewer's zone, an organizer other than the admin as the approver); the screenshots of the README
come from ``tests/demo/test_demo_stack.py``, which watches ``make demo``'s stack fill the page in.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from include.campaign.collection import collect
from include.campaign.registration import decide_agreement

from tests.campaigns_view.test_plugin_api import campaign_yaml
from tests.campaigns_view.view_fixtures import GOLD, context, make_campaign, register, run_file, score, stage_gold, upload
from tests.conftest import PROJECT_ROOT, chromium_page

pytestmark = pytest.mark.airflow
UTC = dt.timezone.utc
ORGANIZER, PASSWORD = "olga", "campaign-view-test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def campaign_state(store, smtp_settings, mailbox, tmp_path, monkeypatch):
    """A campaign whose alpha deadline passed: runs collected and scored, one agreement still waiting."""
    campaign = make_campaign(dt.datetime.now(UTC).replace(microsecond=0))
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "viewlab.yaml").write_text(campaign_yaml(campaign))
    monkeypatch.setenv("CLEF_CAMPAIGNS_DIR", str(folder))
    ctx = context(store, smtp_settings, campaign)
    one = register(ctx, "Team One", "one@example.org", ["alpha"])
    two = register(ctx, "Team Two", "two@example.org", ["alpha"])
    waiting = register(ctx, "Team Waiting", "waiting@example.org", ["alpha"])
    for team in (one, two):
        decide_agreement(ctx, team, "alpha", True, ORGANIZER)
    upload(ctx, "alpha", one, "run-good", run_file(GOLD))
    upload(ctx, "alpha", one, "run-bad", run_file({"1": 0, "2": "maybe"}))
    upload(ctx, "alpha", two, "run-1", run_file({**GOLD, "1": 1, "2": 0}))
    after = context(store, smtp_settings, campaign, clock=campaign.milestone_time("run_deadline") + dt.timedelta(seconds=1))
    stage_gold(after, "alpha")
    collect(after, "alpha")
    score(after, "alpha")
    return {"waiting": waiting, "one": one, "two": two}


@pytest.fixture
def api_server(airflow_home, campaign_state, tmp_path):
    """``airflow api-server`` on a free loopback port; the campaign's DAGs parsed into its database."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(DagBag(dag_folder=str(PROJECT_ROOT / "dags")), "dags-folder", None)
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({ORGANIZER: PASSWORD}))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{ORGANIZER}:admin",
               AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords), AIRFLOW__API__BASE_URL=base,
               AIRFLOW__API__SECRET_KEY="campaign-view-browser-test", AIRFLOW__API_AUTH__JWT_SECRET="campaign-view-browser-test-jwt-secret-0123456789")
    log = (tmp_path / "api-server.log").open("wb")
    server = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "api-server", "-H", "127.0.0.1", "-p", str(port), "-w", "1"],
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(f"{base}/api/v2/monitor/health", server, tmp_path / "api-server.log")
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def wait_until_up(url: str, server: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"airflow api-server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"airflow api-server did not answer within {seconds:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def browser():
    with chromium_page(1280, "America/Chicago", timeout_ms=30000) as page:
        yield page


def test_organizer_signs_in_opens_campaigns_approves_and_reads_the_panels(api_server, browser, campaign_state):
    page = browser
    page.goto(f"{api_server}/")
    page.wait_for_selector("input[name=username]")
    page.fill("input[name=username]", ORGANIZER)
    page.fill("input[name=password]", PASSWORD)
    page.locator("button[type=submit]").click()

    page.get_by_role("link", name="Campaigns").first.click()  # the navigation entry the plugin adds
    frame = page.frame_locator("iframe").first
    frame.get_by_role("link", name="View Lab 2026").click()
    frame.locator("h1", has_text="View Lab 2026").wait_for()
    assert "yours:" in frame.locator(".viewer-time").first.inner_text()  # the viewer's zone, filled in by the page

    waiting = campaign_state["waiting"]
    frame.get_by_role("link", name="Registrations").click()
    frame.get_by_role("button", name=f"Approve {waiting} for alpha").click()
    status = frame.get_by_role("status")
    status.wait_for()
    assert f"Approve of {waiting} for alpha started" in status.inner_text()

    frame.get_by_role("link", name="Submissions").click()
    frame.locator("h2", has_text="Submissions").wait_for()
    grid = frame.locator(".panel").first
    grid.wait_for()
    assert "valid" in grid.inner_text() and "invalid" in grid.inner_text() and "line 2" in grid.inner_text()

    frame.get_by_role("link", name="Evaluations").click()
    frame.locator("h2", has_text="Evaluations").wait_for()
    board = frame.locator(".panel").first
    board.wait_for()
    assert "Private leaderboard v0001" in board.inner_text() and campaign_state["one"] in board.inner_text()

    frame.get_by_role("link", name="Mail").click()
    frame.locator("h2", has_text="Mail").wait_for()
    assert "registration-confirmation" in frame.locator("table").first.inner_text()

    runs = dag_runs(api_server, "viewlab_agreement_approval")
    assert [(r["triggering_user_name"], r["conf"]["team_id"], r["conf"]["decision"]) for r in runs] == [(ORGANIZER, waiting, "approve")]


def dag_runs(base: str, dag_id: str) -> list[dict]:
    """The DAG's runs through the REST API, as the organizer."""
    request = urllib.request.Request(f"{base}/auth/token", data=json.dumps({"username": ORGANIZER, "password": PASSWORD}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        token = json.load(answer)["access_token"]
    listing = urllib.request.Request(f"{base}/api/v2/dags/{dag_id}/dagRuns", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(listing, timeout=10) as answer:
        return json.load(answer)["dag_runs"]
