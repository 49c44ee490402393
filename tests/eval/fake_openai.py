"""A real OpenAI-compatible chat-completions server on loopback, for tests.

It speaks ``POST /v1/chat/completions`` over HTTP (stdlib ``http.server`` in a
thread). Replies come from a ``responder(request_json) -> str``; before that,
queued faults are served in order, one per request: HTTP 429 with Retry-After,
HTTP 500, a reply slower than the client's timeout, a malformed body, or any
status. Every request that reaches the server is recorded.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Fault:
    kind: str  # "status", "slow", "malformed", "no_choices"
    status: int = 500
    retry_after: str | None = None
    delay_s: float = 0.0


def rate_limited(retry_after: str = "1") -> Fault:
    return Fault("status", 429, retry_after)


def server_error(status: int = 500) -> Fault:
    return Fault("status", status)


def slow(delay_s: float) -> Fault:
    return Fault("slow", delay_s=delay_s)


def malformed() -> Fault:
    return Fault("malformed")


def no_choices() -> Fault:
    return Fault("no_choices")


def default_responder(request: dict[str, Any]) -> str:
    return "The answer is adequate. Rating: [[5]]"


class FakeOpenAI:
    def __init__(self, responder: Callable[[dict[str, Any]], str] = default_responder,
                 api_key: str | None = None) -> None:
        self.responder = responder
        self.api_key = api_key
        self.faults: deque[Fault] = deque()
        self.requests: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a slow reply must not hold up shutdown
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)  # fails when the client timed out and left

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._send(401, b'{"error": {"message": "invalid api key"}}')
                    return
                request = json.loads(body)
                with fake._lock:
                    fake.requests.append(request)
                    fake.arrivals.append(time.monotonic())
                fault = fake._next_fault()
                if fault and fault.kind == "status":
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    self._send(fault.status, b'{"error": {"message": "injected"}}', headers)
                    return
                if fault and fault.kind == "malformed":
                    self._send(200, b'{"choices": [{"message": ')
                    return
                if fault and fault.kind == "no_choices":
                    self._send(200, b'{"object": "chat.completion", "choices": []}')
                    return
                if fault and fault.kind == "slow":
                    time.sleep(fault.delay_s)
                content = fake.responder(request)
                reply = {
                    "id": f"chatcmpl-{len(fake.requests)}", "object": "chat.completion",
                    "created": int(time.time()), "model": request.get("model", ""),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
                self._send(200, json.dumps(reply).encode())

        return Handler
