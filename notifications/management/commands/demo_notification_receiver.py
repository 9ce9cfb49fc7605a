"""A small local receiver for the demo's webhook channel: verifies each signature and prints the event.

Every delivery is also appended to var/demo/notifications.jsonl. Quench's own admin shows
the other side (Notifications → Notifications, with each attempt).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from notifications.management.commands.setup_demo_notifications import WEBHOOK
from notifications.models import Channel


def verified(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether `X-Quench-Signature` is the HMAC-SHA256 of "<timestamp>.<body>" with the channel's secret."""
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def make_server(port: int, log_path: Path, out=print, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """The receiver on host:port; it reads the demo channel's secret for every request (it may be changed)."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            close_old_connections()
            channel = Channel.objects.filter(name=WEBHOOK).first()
            ok = channel is not None and verified(
                channel.secret("secret"),
                self.headers.get("X-Quench-Timestamp", ""),
                body,
                self.headers.get("X-Quench-Signature", ""),
            )
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {}
            incident = payload.get("incident") or {}
            line = (
                f"[demo receiver] {payload.get('event', '?')}"
                + (
                    f" · incident #{incident.get('id')} {incident.get('severity')} “{incident.get('title')}”"
                    if incident
                    else ""
                )
                + f" · signature {'ok' if ok else 'INVALID'}"
            )
            with lock:
                out(line)
                with log_path.open("a", encoding="utf-8") as log_file:
                    log_file.write(json.dumps({"signature_ok": ok, "payload": payload}) + "\n")
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok" if ok else b"no")

        def log_message(self, *args):
            pass

    return ThreadingHTTPServer((host, port), Handler)


class Command(BaseCommand):
    help = "Run the demo webhook receiver (prints and records every signed delivery)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8025)

    def handle(self, *args, **options):
        log_path = Path(settings.BASE_DIR) / "var" / "demo" / "notifications.jsonl"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        server = make_server(options["port"], log_path, out=lambda line: self.stdout.write(line))
        self.stdout.write(f"Demo notification receiver on http://127.0.0.1:{options['port']}/ (records to {log_path})")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
