"""The participants' portal: a FastAPI app (server-rendered Jinja2) over the campaign's object store.

Run it standalone with ``uvicorn include.portal.app:app`` or inside Airflow's API server through the
plugin in ``plugins/participant_portal.py`` (mounted under ``/portal``). It never imports Airflow:
everything it decides goes through ``include.campaign``; the DAGs stay the place where registrations
are accepted, runs collected and results published.
"""
