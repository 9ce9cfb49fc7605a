"""A local HTTP receiver for notification tests: records every request, answers from a script.

Each request is kept as (method, path, headers, body). Answers are taken in order from
`script` (then `default`): a `(status, headers, body)` tuple, or `"timeout"` (sleep past the
client's timeout, then answer 200). `delay` slows every answer (to widen races).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class Receiver:
    def __init__(self):
        self.requests: list[Received] = []
        self.script: list = []
        self.default = (200, {}, b"ok")
        self.delay = 0.0
        # verify(received) → bool: the receiver checks the signature as a real endpoint would, and
        # answers 401 (which Quench treats as permanent) when it does not match.
        self.verify = None
        self.verified: list[bool] = []
        self.timeout_sleep = 2.5
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                received = Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._lock:
                    receiver.requests.append(received)
                    answer = receiver.script.pop(0) if receiver.script else receiver.default
                    if receiver.verify is not None:
                        ok = receiver.verify(received)
                        receiver.verified.append(ok)
                        if not ok:
                            answer = (401, {}, b"bad signature")
                if receiver.delay:
                    time.sleep(receiver.delay)
                if answer == "timeout":
                    time.sleep(receiver.timeout_sleep)
                    answer = (200, {}, b"late")
                status, headers, payload = answer
                if isinstance(payload, (dict, list)):
                    payload = json.dumps(payload).encode()
                    headers = {"Content-Type": "application/json", **headers}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(payload)  # the client may have given up (timeout tests)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, *answers) -> None:
        with self._lock:
            self.script.extend(answers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def refused_url() -> str:
    """A local URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def make_channel(kind: str, *, secrets: dict | None = None, **fields):
    """A saved Channel; `secrets` are stored as the admin stores them (encrypted, or "env:NAME")."""
    from notifications import vault
    from notifications.models import Channel

    config = dict(fields.pop("config", {}))
    for key, value in (secrets or {}).items():
        config[key] = vault.stored_form(value)
    channel = Channel(name=fields.pop("name", f"{kind} channel"), kind=kind, config=config, **fields)
    channel.full_clean()
    channel.save()
    return channel


def open_incident(
    post_json,
    token: str,
    *,
    title: str = "KeyError: 'price'",
    severity: str = "P1",
    service: str = "shop",
    dedup_key: str = "",
):
    """Open an incident through the ingest API (so its `incident_opened` notifications are written)."""
    from incidents.models import Incident

    body = {"title": title, "service": service, "severity": severity, "dedup_key": dedup_key or title}
    response = post_json("/api/v1/ingest/events", body, token)
    assert response.status_code == 202, response.content
    return Incident.objects.get(pk=response.json()["results"][0]["incident_id"])
