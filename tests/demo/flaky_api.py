"""A stand-in for Airflow's REST API on loopback that misbehaves on purpose, as a busy API server does.

It answers the calls the live demo makes (``POST /auth/token``, ``POST /api/v2/dags/<dag>/dagRuns``,
``GET /api/v2/dags/~/dagRuns``) over real HTTP, and:

- every ``fail_every``-th request gets a 500 (``database is locked``) before anything is done, like
  the API server whose SQLite write timed out;
- every ``lose_answer_every``-th trigger is done and then answered with a 500 (the answer was lost):
  a client that retries blindly would create the DAG run twice; Airflow answers a second POST of the
  same ``dag_run_id`` with 409, and so does this server.
"""
from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "flaky-api-token"


class FlakyAirflowApi:
    def __init__(self, fail_every: int = 0, lose_answer_every: int = 0, always_fail: bool = False):
        self.fail_every, self.lose_answer_every, self.always_fail = fail_every, lose_answer_every, always_fail
        self.dag_runs: dict[tuple[str, str], dict] = {}  # (dag_id, run_id) -> conf, each created once
        self.statuses: Counter = Counter()
        self._requests = self._triggers = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FlakyAirflowApi":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                with api._lock:
                    api.statuses[status] += 1
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _busy(self) -> bool:
                with api._lock:
                    api._requests += 1
                    return api.always_fail or bool(api.fail_every and api._requests % api.fail_every == 0)

            def do_POST(self) -> None:  # noqa: N802
                body = self._body()
                if self._busy():
                    return self._answer(500, {"detail": "(sqlite3.OperationalError) database is locked"})
                if self.path == "/auth/token":
                    return self._answer(201, {"access_token": TOKEN})
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401, {"detail": "Not authenticated"})
                parts = self.path.strip("/").split("/")
                if parts[:3] != ["api", "v2", "dags"] or parts[4:] != ["dagRuns"]:
                    return self._answer(404, {"detail": "Not Found"})
                key = (parts[3], body["dag_run_id"])
                with api._lock:
                    if key in api.dag_runs:
                        conflict = True
                    else:
                        conflict = False
                        api.dag_runs[key] = body["conf"]
                        api._triggers += 1
                        lost = bool(api.lose_answer_every and api._triggers % api.lose_answer_every == 0)
                if conflict:
                    return self._answer(409, {"detail": f"DAG run {key[1]} already exists"})
                if lost:
                    return self._answer(500, {"detail": "Internal Server Error"})
                return self._answer(200, {"dag_id": key[0], "dag_run_id": key[1], "state": "queued"})

            def do_GET(self) -> None:  # noqa: N802
                if self._busy():
                    return self._answer(500, {"detail": "(sqlite3.OperationalError) database is locked"})
                with api._lock:
                    runs = [{"dag_id": dag_id, "dag_run_id": run_id, "run_type": "manual", "state": "queued"} for dag_id, run_id in api.dag_runs]
                return self._answer(200, {"dag_runs": runs, "total_entries": len(runs)})

        return Handler
