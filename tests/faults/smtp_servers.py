"""SMTP servers on loopback that misbehave on purpose, for the fault tests.

- :class:`BouncingRecorder`: a real aiosmtpd server that refuses every address starting with
  ``bounce@`` with ``550 5.1.1`` (and records what it accepted).
- :class:`BusyRecorder`: refuses one address for now (``451``), a transient failure.
- :class:`SlowRecorder`: a real aiosmtpd server that takes its time before accepting a message
  (two senders then overlap).
- :class:`ScriptedSmtpServer`: a small threaded socket server speaking just enough SMTP, that
  ``drop-after-data`` (reads the whole message, then closes the connection without a reply),
  ``hang-after-data`` (reads the message and never answers) or ``hang-at-greeting`` (accepts the
  TCP connection and never says a word) or ``trickle`` (a greeting of continuation lines that never
  ends, each line in time for any read timeout). It counts connections and keeps every message body it read.
"""
from __future__ import annotations

import asyncio
import socket
import socketserver
import threading
from dataclasses import dataclass, field

from devtools.devstack import MailRecorder, start_smtp_server

MODES = ("drop-after-data", "hang-after-data", "hang-at-greeting", "trickle")


class BouncingRecorder(MailRecorder):
    """An SMTP server that has no mailbox for addresses starting with ``bounce@``."""

    def __init__(self):
        super().__init__()
        self.refused: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's hook name)
        if address.lower().startswith("bounce@"):
            self.refused.append(address)
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class BusyRecorder(MailRecorder):
    """Answers ``451 4.2.1 mailbox busy, try later`` for one address: a transient refusal."""

    def __init__(self, busy: str):
        super().__init__()
        self.busy = busy.lower()
        self.tried: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's hook name)
        self.tried.append(address)
        if address.lower() == self.busy:
            return "451 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class SlowRecorder(MailRecorder):
    """Accepts each message only after ``delay`` seconds (the body is already received)."""

    delay: float = 0.6

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def start(recorder: MailRecorder):
    """(controller, port) of an aiosmtpd server on 127.0.0.1 with this handler."""
    return start_smtp_server(recorder)


@dataclass
class ScriptedSmtpServer:
    """A loopback SMTP server that fails in one of :data:`MODES`; use as a context manager."""

    mode: str
    connections: int = 0
    messages: list[bytes] = field(default_factory=list)
    port: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                owner._serve(self.rfile, self.wfile, self.connection)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]

    def __enter__(self) -> "ScriptedSmtpServer":
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, rfile, wfile, connection: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        if self.mode == "hang-at-greeting":
            self._stop.wait(30)
            return
        reply = lambda line: (wfile.write(line.encode() + b"\r\n"), wfile.flush())  # noqa: E731
        if self.mode == "trickle":  # a greeting that never ends, each line well within any read timeout
            while not self._stop.wait(0.2):
                try:
                    reply("220-still greeting")
                except OSError:
                    return
            return
        reply("220 scripted.example ESMTP")
        while not self._stop.is_set():
            line = rfile.readline()
            if not line:
                return
            verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                reply("250 scripted.example")
            elif verb == "DATA":
                reply("354 end with <CRLF>.<CRLF>")
                self._read_message(rfile)
                if self.mode == "drop-after-data":
                    connection.shutdown(socket.SHUT_RDWR)
                    return
                self._stop.wait(30)  # hang-after-data: never answer
                return
            elif verb == "QUIT":
                reply("221 bye")
                return
            else:  # MAIL, RCPT, RSET, NOOP
                reply("250 OK")

    def _read_message(self, rfile) -> None:
        lines = []
        while True:
            line = rfile.readline()
            if not line or line == b".\r\n":
                break
            lines.append(line)
        with self._lock:
            self.messages.append(b"".join(lines))

    def message_ids(self) -> list[str]:
        ids = []
        for raw in self.messages:
            for line in raw.split(b"\r\n"):
                if line.lower().startswith(b"message-id:"):
                    ids.append(line.split(b":", 1)[1].strip().decode())
        return ids
