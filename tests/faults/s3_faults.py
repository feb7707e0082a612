"""An S3 endpoint on loopback that misbehaves on purpose, in front of the real (moto) one.

:class:`FaultyS3` is a small HTTP proxy on 127.0.0.1. In mode ``"pass"`` it forwards every
request to the moto server unchanged; in the other modes it answers the requests it is told to
spoil (all of them, or only those whose path contains ``only``) with

- ``"5xx"``: ``503 Slow Down`` with an S3 error document (what an overloaded endpoint says),
- ``"hang"``: nothing at all (the connection stays open, no byte is sent),
- ``"reset"``: a TCP reset right after the request arrives,
- ``"cut"``: the real answer's headers and half its body, then a reset (a GET broken midway).

It counts the requests it saw, so tests can tell how many tries a call made. Nothing in it
patches boto3: the store reaches it over HTTP like any endpoint.
"""
from __future__ import annotations

import http.client
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MODES = ("pass", "5xx", "hang", "reset", "cut")
SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message></Error>")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        faults = self.server.faults
        mode = faults.mode_for(self.path)
        if mode == "5xx":
            self._answer(503, SLOW_DOWN, {"Content-Type": "application/xml"})
        elif mode == "hang":
            faults.released.wait(faults.hang_seconds)
            self.close_connection = True
        elif mode == "reset":
            self._reset()
        else:
            status, headers, answer = faults.forward(self.command, self.path, self.headers, body)
            if mode == "cut" and len(answer) > 1:
                self._answer(status, answer[: len(answer) // 2], headers, declared=len(answer))
                self.wfile.flush()
                self._reset()
            else:
                self._answer(status, answer, headers)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

    def _read_chunked(self) -> bytes:
        data = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return data
            data += self.rfile.read(size)
            self.rfile.readline()

    def _answer(self, status: int, body: bytes, headers: dict[str, str], declared: int | None = None) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(name, value)
        if self.command == "HEAD":  # no body: the real answer's length is the object's
            declared = int(headers.get("Content-Length", headers.get("content-length", 0)))
        self.send_header("Content-Length", str(len(body) if declared is None else declared))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    faults: "FaultyS3"


class FaultyS3:
    """A misbehaving S3 endpoint on 127.0.0.1 in front of ``upstream`` (the moto server)."""

    def __init__(self, upstream: str, hang_seconds: float = 30.0):
        self.upstream = urlsplit(upstream)
        self.mode = "pass"
        self.only: str | None = None
        self.times: int | None = None  # spoil only this many requests, then pass
        self.hang_seconds = hang_seconds
        self.released = threading.Event()
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.faults = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="faulty-s3", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FaultyS3":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()

    def misbehave(self, mode: str, only: str | None = None, times: int | None = None) -> None:
        """Spoil every request from now on (or those whose path contains ``only``; or only the next ``times``)."""
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}; one of {MODES}")
        self.released.set() if mode == "pass" else self.released.clear()
        with self._lock:
            self.mode, self.only, self.times = mode, only, times
            self.requests.clear()

    def heal(self) -> None:
        self.misbehave("pass")

    def mode_for(self, path: str) -> str:
        """The mode for this request, counted (thread-safe)."""
        with self._lock:
            mode = self.mode
            if self.only is not None and self.only not in path:
                mode = "pass"
            elif mode != "pass" and self.times is not None:
                if self.times <= 0:
                    mode = "pass"
                else:
                    self.times -= 1
            self.requests.append((mode, path))
            return mode

    def spoiled(self) -> int:
        with self._lock:
            return sum(1 for mode, _ in self.requests if mode != "pass")

    def forward(self, method: str, path: str, headers, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """The real endpoint's answer to the same request (signed for this host: moto does not check)."""
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            forwarded = {name: value for name, value in headers.items() if name.lower() not in ("transfer-encoding", "content-length")}
            forwarded["Content-Length"] = str(len(body))
            connection.request(method, path, body=body, headers=forwarded)
            answer = connection.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read()
        finally:
            connection.close()
