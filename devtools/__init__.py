"""The dev wing: what tests, benchmarks and demos run, never the product.

The production image (``Dockerfile``, ``.dockerignore``) does not contain this package, and nothing
in ``include/``, ``dags/`` or ``plugins/`` imports it (``tests/dev_wing/test_dev_wing.py`` checks
both). It holds the embedded stack of ``make demo`` (:mod:`devtools.devstack`), the local cluster
(:mod:`devtools.cluster`), the demo data and stand-in participants (:mod:`devtools.demo`), and the
in-process replay of a campaign's DAGs (:mod:`devtools.simulate`, :mod:`devtools.campaign_replay`,
:mod:`devtools.dag_driver`, :mod:`devtools.compressed_calendar`).
"""
