"""The Campaigns plugin inside Airflow's own API app: auth, the page, and decisions through the REST API.

``create_app()`` builds the real api-server app with this project's plugins folder; the plugin's
app is mounted under ``/campaigns``. Requests carry a JWT that Airflow's auth manager issued, as the
UI's cookie does; the Approve button's form goes through Airflow's REST API (the same in-process app,
through its own test client) and creates a run of ``<campaign>_agreement_approval``.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import sys

import pytest
import yaml

from include.campaign.registration import decide_agreement

from tests.campaigns_view.view_fixtures import context, make_campaign, register

pytestmark = pytest.mark.airflow
UTC = dt.timezone.utc


def campaign_yaml(campaign) -> str:
    data = json.loads(campaign.model_dump_json(exclude_none=True))
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture
def campaign_file(tmp_path, monkeypatch):
    campaign = make_campaign(dt.datetime.now(UTC).replace(microsecond=0))
    folder = tmp_path / "campaigns"
    folder.mkdir()
    path = folder / "viewlab.yaml"
    path.write_text(campaign_yaml(campaign))
    monkeypatch.setenv("CLEF_CAMPAIGNS_DIR", str(folder))
    return path


@pytest.fixture
def api(airflow_home, campaign_file, store, smtp, mailbox):
    """The api-server app with the campaign's DAGs in the metadata database."""
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from fastapi.testclient import TestClient

    from tests.conftest import PROJECT_ROOT

    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    purge_cached_app()
    app = create_app()
    return app, TestClient(app)


def plugin_module():
    return next(m for m in list(sys.modules.values()) if getattr(m, "CampaignsViewPlugin", None) is not None and hasattr(m, "airflow_rest"))


def token_for(username: str) -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role="admin"))


def test_anonymous_and_forged_requests_are_refused(api):
    _, client = api
    assert client.get("/campaigns/").status_code == 401
    assert client.get("/campaigns/viewlab/overview.json").status_code == 401
    assert client.get("/campaigns/viewlab/", headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401
    page = client.get("/campaigns/", headers={"Accept": "text/html"})
    assert page.status_code == 401 and "Sign in" in page.text


def test_signed_in_user_sees_the_list_the_page_and_the_nav_entry(api):
    _, client = api
    client.cookies.set("_token", token_for("olga"))
    listing = client.get("/campaigns/")
    assert listing.status_code == 200 and "View Lab 2026" in listing.text and "/campaigns/viewlab/" in listing.text
    page = client.get("/campaigns/viewlab/")
    assert page.status_code == 200 and ">Timeline</h2>" in page.text
    for panel in ("timeline", "registrations", "submissions", "evaluations", "mail"):
        tab = client.get(f"/campaigns/viewlab/{panel}")
        assert tab.status_code == 200 and f">{panel.capitalize()}</h2>" in tab.text
        assert tab.text.count("</h2>") == 1  # one panel per page
    assert client.get("/campaigns/nosuch/").status_code == 404
    assert client.get("/campaigns/viewlab/nosuch").status_code == 404
    assert set(client.get("/campaigns/viewlab/overview.json").json()) >= {"timeline", "registrations", "submissions", "evaluations", "mail"}
    plugins = client.get("/api/v2/plugins").json()["plugins"]
    views = [v for p in plugins for v in p.get("external_views", [])]
    assert {"name": "Campaigns", "href": "/campaigns/", "url_route": "campaigns"}.items() <= [v for v in views if v["name"] == "Campaigns"][0].items()


def runs_of(dag_id: str) -> dict:
    """run_id -> DagRun of one DAG, from the metadata database."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id)).all()
        session.expunge_all()
        return {run.run_id: run for run in runs}


def test_approve_button_starts_the_approval_dag_as_the_signed_in_user(api, store, smtp_settings):
    from fastapi.testclient import TestClient

    app, client = api
    ctx = context(store, smtp_settings, make_campaign(dt.datetime.now(UTC).replace(microsecond=0)))
    waiting = register(ctx, "Team Waiting", "waiting@example.org", ["alpha"])
    module = plugin_module()
    module.app.dependency_overrides[module.airflow_rest] = lambda: TestClient(app)
    try:
        client.cookies.set("_token", token_for("olga"))
        page = client.get("/campaigns/viewlab/registrations")
        assert f"Approve {waiting} for alpha" in page.text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
        before, scoring_before = runs_of("viewlab_agreement_approval"), runs_of("viewlab_scoring")  # the database lives for the whole session

        refused = client.post("/campaigns/viewlab/agreements", data={"team_id": waiting, "task": "alpha", "decision": "approve", "csrf": "0" * 64})
        assert refused.status_code == 403
        foreign = client.post("/campaigns/viewlab/agreements", data={"team_id": waiting, "task": "alpha", "decision": "approve", "csrf": csrf},
                              headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        assert runs_of("viewlab_agreement_approval").keys() == before.keys()  # neither started a run

        answer = client.post("/campaigns/viewlab/agreements", data={"team_id": waiting, "task": "alpha", "decision": "approve", "note": "checked", "csrf": csrf},
                             follow_redirects=False)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"].startswith("/campaigns/viewlab/registrations?done=")
        started = [run for run_id, run in runs_of("viewlab_agreement_approval").items() if run_id not in before]
        assert [(run.triggering_user_name, run.conf) for run in started] == [
            ("olga", {"team_id": waiting, "tasks": ["alpha"], "decision": "approve", "note": "checked"})]

        rescore = client.post("/campaigns/viewlab/rescore", data={"task": "alpha", "reason": "gold fixed", "teams": f"{waiting}, other", "csrf": csrf},
                              follow_redirects=False)
        assert rescore.status_code == 303, rescore.text
        rescores = [run for run_id, run in runs_of("viewlab_scoring").items() if run_id not in scoring_before]
        assert [(r.triggering_user_name, r.conf["teams"], r.conf["reason"]) for r in rescores] == [("olga", [waiting, "other"], "gold fixed")]
        assert client.post("/campaigns/viewlab/rescore", data={"task": "alpha", "reason": " ", "csrf": csrf}).status_code == 400
    finally:
        module.app.dependency_overrides.clear()


def test_the_page_escapes_what_participants_wrote(api, store, smtp_settings):
    _, client = api
    ctx = context(store, smtp_settings, make_campaign(dt.datetime.now(UTC).replace(microsecond=0)))
    register(ctx, "<script>alert(1)</script> Team", "xss@example.org", ["alpha"])
    client.cookies.set("_token", token_for("olga"))
    page = client.get("/campaigns/viewlab/registrations").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_list_reads_the_panels_ahead_so_the_next_tab_finds_them_cached(api, store, smtp_settings):
    import threading

    from include.campaign import overview

    _, client = api
    ctx = context(store, smtp_settings, make_campaign(dt.datetime.now(UTC).replace(microsecond=0)))
    team = register(ctx, "Team Early", "early@example.org", ["alpha"])
    module = plugin_module()
    module._warmed_at.clear()
    overview._CACHE.clear()
    client.cookies.set("_token", token_for("olga"))
    assert client.get("/campaigns/").status_code == 200
    for thread in [t for t in threading.enumerate() if t.name == module.WARM_UP_THREAD]:
        thread.join(timeout=60)
    record = ctx.layout.team_record(team)
    assert any(key[2] == record for key in overview._CACHE._values), "the team record was not read ahead"
    assert module.warm_up(module.campaign_contexts()) is None, "at most once a minute per campaign"
