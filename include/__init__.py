"""clef-campaign domain code: everything an evaluation campaign needs, importable without Airflow."""
