"""Concurrent writers on the demo's candidate metadata databases: SQLite (Airflow's default) against PostgreSQL.

``make demo`` lost its participants when the API server's write (a POST of a DAG run) waited 5 s for
SQLite's write lock while the eleven mapped tasks of a release wrote their XComs and states. This
script plays that load without Airflow: ``--writers`` processes each run ``--transactions``
transactions through SQLAlchemy and the driver Airflow uses (pysqlite with its default 5 s busy
timeout; psycopg2 for PostgreSQL). A transaction reads a row, writes an XCom-sized row and holds its
write for ``hold`` seconds, which stands for the work a task or the scheduler does inside one
transaction; on a loaded 2-core machine that work stretches, which the larger holds stand for.

Printed per database and hold: transactions that failed (``database is locked`` on SQLite), the
median and worst latency of one transaction, and the total time. Candidates:

- ``sqlite``: a file, as ``airflow standalone`` uses by default (the baseline);
- ``pgserver``: PostgreSQL 16 from the ``pgserver`` wheel, started in a temporary folder (what the
  demo starts now, no server needed);
- ``machine-pg``: the machine's own PostgreSQL on 127.0.0.1 if one answers (a fresh database,
  dropped afterwards).

    python benchmarks/metadata_db.py                      # 12 writers x 20 transactions, holds 0.01/0.2/0.6 s
    python benchmarks/metadata_db.py --writers 4 --holds 0.5
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

PAYLOAD = "x" * 2048  # about one XCom of a mapped task's summary

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS task_state (id INTEGER PRIMARY KEY, state VARCHAR(20))",
    "CREATE TABLE IF NOT EXISTS xcom (writer INTEGER, seq INTEGER, value TEXT)",
]


def writer(url: str, writer_id: int, transactions: int, hold: float, results) -> None:
    """One process: ``transactions`` read-then-write transactions, each timed; failures counted."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    latencies, failures = [], []
    for seq in range(transactions):
        start = time.perf_counter()
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("SELECT state FROM task_state WHERE id = :id"), {"id": writer_id}).fetchall()
                conn.execute(sa.text("INSERT INTO xcom (writer, seq, value) VALUES (:w, :s, :v)"), {"w": writer_id, "s": seq, "v": PAYLOAD})
                conn.execute(sa.text("UPDATE task_state SET state = :state WHERE id = :id"), {"state": f"step-{seq}", "id": writer_id})
                time.sleep(hold)
        except sa.exc.OperationalError as exc:
            failures.append(str(exc.orig).splitlines()[0])
        latencies.append(time.perf_counter() - start)
    engine.dispose()
    results.put((writer_id, latencies, failures))


def prepare(url: str, writers: int) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for statement in SCHEMA:
            conn.execute(sa.text(statement))
        conn.execute(sa.text("DELETE FROM xcom"))
        conn.execute(sa.text("DELETE FROM task_state"))
        for writer_id in range(writers):
            conn.execute(sa.text("INSERT INTO task_state (id, state) VALUES (:id, 'queued')"), {"id": writer_id})
    engine.dispose()


def run(url: str, writers: int, transactions: int, hold: float) -> dict:
    prepare(url, writers)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=writer, args=(url, i, transactions, hold, results)) for i in range(writers)]
    start = time.perf_counter()
    for process in processes:
        process.start()
    collected = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    elapsed = time.perf_counter() - start
    latencies = [value for _, values, _ in collected for value in values]
    failures = [message for _, _, messages in collected for message in messages]
    return {
        "failed": len(failures),
        "total": writers * transactions,
        "median": statistics.median(latencies),
        "worst": max(latencies),
        "elapsed": elapsed,
        "error": failures[0] if failures else "",
    }


def start_pgserver(folder: Path):
    import pgserver

    server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
    server.psql("CREATE DATABASE bench;")
    return server, server.get_uri("bench").replace("postgresql://", "postgresql+psycopg2://", 1)


def machine_postgres():
    """A fresh database on the machine's PostgreSQL (127.0.0.1, trust auth), or None if none answers."""
    admin_url = os.environ.get("CLEF_BENCH_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    name = f"clef_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        return None
    url = sa.engine.make_url(admin_url).set(database=name)
    return admin, name, url.render_as_string(hide_password=False)


def drop_machine_database(admin, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=12, help="concurrent writer processes (eleven mapped tasks and the API server)")
    parser.add_argument("--transactions", type=int, default=20, help="transactions per writer")
    parser.add_argument("--holds", type=float, nargs="+", default=[0.01, 0.2, 0.6], help="seconds each transaction holds its write")
    parser.add_argument("--no-machine-pg", action="store_true", help="skip the machine's PostgreSQL on 127.0.0.1")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="metadata-db-bench-"))
    server, pg_url = start_pgserver(folder)
    candidates = {"sqlite": f"sqlite:///{folder / 'airflow.db'}", "pgserver": pg_url}
    machine = None if args.no_machine_pg else machine_postgres()
    if machine is not None:
        candidates["machine-pg"] = machine[2]
    print(f"{args.writers} writers x {args.transactions} transactions; SQLite busy timeout 5 s (pysqlite's default, as Airflow leaves it)")
    print(f"{'database':<11} {'hold s':>6} {'failed':>9} {'median s':>9} {'worst s':>8} {'total s':>8}  first error")
    try:
        for hold in args.holds:
            for name, url in candidates.items():
                figures = run(url, args.writers, args.transactions, hold)
                print(f"{name:<11} {hold:>6.2f} {figures['failed']:>4}/{figures['total']:<4} {figures['median']:>9.3f} {figures['worst']:>8.2f} "
                      f"{figures['elapsed']:>8.1f}  {figures['error'][:60]}", flush=True)
    finally:
        if machine is not None:
            drop_machine_database(machine[0], machine[1])
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
