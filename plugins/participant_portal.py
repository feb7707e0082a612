"""Airflow plugin: the participants' portal, mounted on the API server under ``/portal``.

For the demo and small deployments. The portal keeps its own sign-in (e-mailed links), never
Airflow's: nothing under ``/portal`` reaches the organizers' UI or API. In production run it on its
own (``uvicorn include.portal.app:app``, the ``participant-portal`` service in docker-compose.yaml)
so that only the portal faces the internet.
"""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.portal.app import app as portal_app

PREFIX = "/portal"


class ParticipantPortalPlugin(AirflowPlugin):
    name = "participant_portal"
    fastapi_apps = [{"app": portal_app, "url_prefix": PREFIX, "name": "Participants' portal"}]
