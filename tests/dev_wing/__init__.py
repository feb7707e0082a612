"""Tests of the dev wing (devtools/): its boundary with the product and its hold on Airflow internals."""
