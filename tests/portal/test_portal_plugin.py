"""Inside Airflow: the plugin mounts the portal under /portal, and the portal's links and cookies
follow that prefix (settings come from the environment, as in the demo)."""
from __future__ import annotations

import pytest

from tests.portal.conftest import form_token


@pytest.fixture(autouse=True)
def fresh_module_app():
    """The plugin serves the module-level app, which reads the environment once: forget it per test."""
    from include.portal.app import app

    for cached in ("settings", "store", "signing_store", "signer"):
        app.state.portal.__dict__.pop(cached, None)
    yield


def test_airflow_mounts_the_portal_under_its_prefix(campaign_file, store, smtp, portal_env, monkeypatch):
    from airflow import plugins_manager
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    monkeypatch.setenv("CLEF_CAMPAIGNS_DIR", str(campaign_file.parent))
    apps, _ = plugins_manager.get_fastapi_plugins()
    mounted = [entry for entry in apps if entry.get("url_prefix") == "/portal"]
    assert len(mounted) == 1 and mounted[0]["name"] == "Participants' portal"
    parent = FastAPI()
    parent.mount("/portal", mounted[0]["app"])  # what Airflow's API server does with fastapi_apps
    with TestClient(parent) as client:
        page = client.get("/portal/c/portallab")
        assert page.status_code == 200 and 'href="/portal/c/portallab/register"' in page.text
        assert "Path=/portal" in page.headers["set-cookie"]
        form = client.get("/portal/c/portallab/sign-in")
        asked = client.post("/portal/c/portallab/sign-in", data={"csrf_token": form_token(form.text), "contact_email": "nobody@example.org"})
        assert asked.status_code == 200 and "Check your mailbox" in asked.text
        assert client.get("/portal/api/v2/dags").status_code == 404  # nothing of Airflow behind the prefix


def test_airflows_own_api_server_serves_the_portal(campaign_file, store, smtp, portal_env, airflow_home, monkeypatch):
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    monkeypatch.setenv("CLEF_CAMPAIGNS_DIR", str(campaign_file.parent))
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "portal-test-jwt-secret-" + "z" * 32)
    with TestClient(create_app()) as client:
        assert client.get("/portal/healthz").text == "ok"
        page = client.get("/portal/c/portallab")
        assert page.status_code == 200 and "Portal Lab 2026" in page.text and page.headers["x-frame-options"] == "DENY"
