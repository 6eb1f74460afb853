"""A deliberately misbehaving LML for tests: a loopback HTTP server in front of the
project's stand-in. It passes every request through and lets a test rewrite the answer:
another status or body, a Retry-After, a body sent one byte at a time.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from library_identity.demo.standin.server import StandIn


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    trickle_s: float = 0.0  # pause before each byte of the body

    def json(self) -> Any:
        return json.loads(self.body)

    @classmethod
    def of(cls, status: int, payload: Any, **kwargs: Any) -> Reply:
        return cls(status, json.dumps(payload, ensure_ascii=False).encode(), **kwargs)


# (path, the request's JSON body or None, the stand-in's reply) -> the reply to send, or
# None to send the stand-in's unchanged.
Hook = Callable[[str, Any, Reply], Reply | None]


@dataclass
class Seen:
    path: str
    request: Any
    status: int
    started: float
    ended: float | None = None  # when the reply was fully sent or the client went away


def bulk_rows(request: Any) -> int:
    """How many rows a bulk-resolve request carried (0 for the start-up probe)."""
    inputs = request.get("inputs") if isinstance(request, dict) else None
    return len(inputs) if isinstance(inputs, list) else 0


class HostileLML:
    def __init__(self, upstream: StandIn, hook: Hook | None = None) -> None:
        self.upstream = upstream
        self.hook = hook
        self.seen: list[Seen] = []
        self.url = ""
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._client = httpx.Client(base_url=upstream.url, timeout=60)

    def __enter__(self) -> HostileLML:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer._serve(self, "GET")

            def do_POST(self) -> None:
                outer._serve(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._client.close()

    def requests_to(self, suffix: str) -> list[Seen]:
        return [s for s in self.seen if s.path.endswith(suffix)]

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() in ("authorization", "content-type")}
        answer = self._client.request(method, handler.path, content=raw, headers=headers)
        reply = Reply(answer.status_code, answer.content,
                      {k: v for k, v in answer.headers.items() if k.lower() == "retry-after"})
        try:
            request = json.loads(raw) if raw else None
        except ValueError:
            request = None
        if self.hook is not None:
            reply = self.hook(handler.path, request, reply) or reply
        seen = Seen(handler.path, request, reply.status, time.monotonic())
        self.seen.append(seen)
        try:
            self._send(handler, reply)
        finally:
            seen.ended = time.monotonic()

    def _send(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        with contextlib.suppress(OSError):
            if not reply.trickle_s:
                handler.wfile.write(reply.body)
                return
            handler.wfile.flush()
            for i in range(len(reply.body)):
                if self._stopping.wait(reply.trickle_s):
                    return
                handler.wfile.write(reply.body[i:i + 1])
                handler.wfile.flush()
