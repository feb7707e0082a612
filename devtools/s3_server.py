"""The S3 endpoint of the tests, the demo and the benchmarks: moto's server, serving S3 only, on 127.0.0.1.

moto's own server answers every AWS service: for each request it works out which one from the
host, the path, the signature and the body, and part of that lists moto's package folders on disk
(``moto.backends.list_of_moto_modules``). With small objects that look-up costs more than the S3
work itself: in ``benchmarks/scoring_dag.py`` (300 runs, 1,839 requests) it took 68 s of the
server's 86 s of CPU, in the same process as the pipeline it served. :class:`S3OnlyDispatcher`
sends every request to moto's S3 app (and ``/moto-api`` to moto's own API), which is what the look-up
answers for every request our code makes; the S3 behaviour is moto's, unchanged.

- :func:`start_s3_server` runs it in a thread of this process (the tests' shared server);
- :func:`start_s3_process` runs it in a child process, so that its work does not compete with the
  caller's for the GIL, as a real S3 does not (the benchmarks);
- ``python -m devtools.s3_server --port N`` is that child.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_SECONDS = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now, on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def s3_only_dispatcher():
    """moto's WSGI dispatcher, with every request outside ``/moto-api`` served by its S3 app."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class S3OnlyDispatcher(DomainDispatcherApplication):
        def __init__(self):
            super().__init__(create_backend_app)
            self._s3_app = None

        def get_application(self, environ: dict[str, Any]):
            path = environ.get("PATH_INFO", "")
            if isinstance(path, bytes):
                path = path.decode("utf-8", "replace")
            if path.startswith("/moto-api") or path == "/favicon.ico":
                return super().get_application(environ)
            if self._s3_app is None:
                with self.lock:
                    if self._s3_app is None:
                        self._s3_app = self.create_app("s3")
            return self._s3_app

    return S3OnlyDispatcher()


class S3Server:
    """An S3-only moto server in a daemon thread of this process (``ThreadedMotoServer``'s shape)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server = make_server(host, port, s3_only_dispatcher(), threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve in the calling thread until the process ends (the child of :func:`start_s3_process`)."""
        self._server.serve_forever()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=30)


def start_s3_server(port: int = 0) -> tuple[S3Server, str]:
    """An S3-only moto server in a thread on 127.0.0.1; returns (server, endpoint_url)."""
    server = S3Server(port=port)
    server.start()
    host, bound_port = server.get_host_and_port()
    return server, f"http://{host}:{bound_port}"


def start_s3_process(port: int = 0, timeout: float = START_TIMEOUT_SECONDS) -> tuple[subprocess.Popen, str]:
    """An S3-only moto server in a child process on 127.0.0.1; returns (process, endpoint_url) once it
    accepts connections. Stop it with ``process.terminate()``."""
    port = port or free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-m", "devtools.s3_server", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the S3 server process exited with {process.returncode} before it listened on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    process.wait(timeout=10)
    raise RuntimeError(f"the S3 server process did not listen on port {port} within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    S3Server(port=args.port).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
