"""Airflow-side glue shared by the DAG files: which campaigns exist, DAG defaults, and the campaign context.

Lives in ``dags/`` (listed in ``.airflowignore``) because it imports Airflow; the domain code in
``include/`` never does.
"""
