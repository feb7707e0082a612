"""The campaign domain: config model, timeline, object-store layout and access, registration,
release, collection, validation, scoring, leaderboards and mail. Never imports Airflow."""
