"""A local API on 127.0.0.1 that records when each request arrives, and can answer 429 once."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class RecordingAPI:
    """`arrivals`: (time.time(), X-Caller, status answered) per request, in arrival order."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, int]] = []
        self.authorizations: list[str] = []
        self.throttle_at: int | None = None  # the request number (1-based) answered 429
        self.retry_after = "2"
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                now = time.time()
                with api._lock:
                    number = len(api.arrivals) + 1
                    status = 429 if number == api.throttle_at else 200
                    api.arrivals.append((now, self.headers.get("X-Caller", ""), status))
                    api.authorizations.append(self.headers.get("Authorization", ""))
                body = b'{"ok": true}' if status == 200 else b'{"error": "slow down"}'
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", api.retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def times(self) -> list[float]:
        with self._lock:
            return sorted(t for t, _, _ in self.arrivals)

    def most_in_any_window(self, seconds: float = 1.0) -> int:
        """The most arrivals in any half-open window [t, t + seconds)."""
        times = self.times()
        most, first = 0, 0
        for last, t in enumerate(times):
            while t - times[first] >= seconds:
                first += 1
            most = max(most, last - first + 1)
        return most
