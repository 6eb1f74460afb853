"""HTTP layer of the LML stand-in: routes, auth, caps, status codes, faults and a request log.

A real server on loopback (stdlib only) so clients exercise their actual transport: keep-alive,
timeouts, status handling and body parsing. Every response is written in one send with an
exact Content-Length, so HTTP/1.1 clients reuse connections without Nagle stalls.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import math
import signal
import socket
import socketserver
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from library_identity import __version__
from library_identity.demo.standin.capacity import Capacity, CapacitySettings, Dry
from library_identity.demo.standin.refresh import (
    REFRESH_CAP,
    identity_id_for,
    identity_key,
    refresh_item,
    resolve_errors,
)
from library_identity.demo.standin.verdicts import METHOD_BANDS, cache_stats, verdict
from library_identity.demo.synthetic import stable_hash

BULK_CAP = 1000
BULK_PATH = "/api/v1/identity/bulk-resolve-libraries"
REFRESH_PATH = "/api/v1/cache/refresh-for-identities"
RESOLVE_PATH = "/api/v1/identity/resolve"
HEALTH_PATH = "/health"
STATS_PATH = "/_standin/stats"  # the stand-in's own: its capacity model's counters
_POST_ROUTES = (BULK_PATH, REFRESH_PATH, RESOLVE_PATH)

# Bodies LML sends for the injected statuses; 503 is what a store outage looks like.
_INJECTED_MESSAGES = {
    503: "Entity store is not available",
    500: "Internal Server Error",
    502: "Bad Gateway",
    504: "Gateway Timeout",
    429: "Too Many Requests",
}


@dataclass
class StandInConfig:
    """Behaviour knobs. The running server reads them on every request, so tests may change
    them between calls. Rates are shares of requests; selection is a pure function of
    (seed, fault, request number), so a given order of requests always meets the same faults."""

    api_key: str | None = "standin-key"  # None = auth disabled; "" = required but unset (500)
    latency_ms: float = 0
    error_rate: float = 0.0
    error_status: int = 503
    retry_after: float | None = None
    timeout_rate: float = 0.0
    hang_seconds: float = 60.0
    short_rate: float = 0.0
    foreign_id_rate: float = 0.0
    duplicate_id_rate: float = 0.0
    # Where the copy that replaces another row's answer sits: "any", or "before" / "after"
    # the genuine answer of the id it repeats.
    duplicate_order: str = "any"
    # Each compilation result gets one answered credit with a confidence of 1.5 or -0.1.
    track_confidence_rate: float = 0.0
    # Share of single_artist results (chosen per library_id) whose confidence is 0.05
    # under their method's band: valid JSON in 0..1 that a consumer must not store.
    out_of_band_rate: float = 0.0
    malformed_rate: float = 0.0
    bad_enum_rate: float = 0.0
    cache_stats: bool = False
    refresh_enabled: bool = True
    fail_first: int = 0
    seed: int = 0
    drift: int = 0  # non-zero: ~10% of known artists get other ids/methods
    commit_sha: str | None = None  # what /health reports; null like production usually does
    capacity: CapacitySettings | None = None  # None: unlimited upstream budget


@dataclass
class RequestRecord:
    time: float  # time.monotonic() at arrival
    method: str
    path: str
    status: int | None = None  # set just before the response is written
    batch_size: int | None = None
    authorized: bool = False


class _Reject(Exception):
    """Ends a request early with this status and JSON body."""

    def __init__(self, status: int, body: dict[str, Any],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON. orjson is six times faster than the standard library, which
    matters when the stand-in shares a machine with the loader it serves; the standard
    library takes what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _request_failed(status: int, errors: list[dict[str, Any]]) -> _Reject:
    """The hand-parsed bulk routes' validation error: a 4xx whose body is LML's error body,
    `{"message": "Request failed", "details": {"detail": [...]}}`."""
    return _Reject(status, {"message": "Request failed", "details": {"detail": errors}})


def _parse_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _request_failed(400, [{"type": "json_invalid", "loc": ["body"],
                                     "msg": f"Invalid JSON: {type(exc).__name__}"}]) from None
    if not isinstance(body, dict):
        raise _request_failed(400, [{"type": "model_type", "loc": ["body"],
                                     "msg": "Input should be a valid dictionary or object"}])
    return body


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _list_errors(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    if key not in body:
        return [{"type": "missing", "loc": [key], "msg": "Field required"}]
    if not isinstance(body[key], list):
        return [{"type": "list_type", "loc": [key], "msg": "Input should be a valid list"}]
    if not body[key]:
        return [{"type": "too_short", "loc": [key],
                 "msg": "List should have at least 1 item after validation, not 0"}]
    return []


def parse_bulk(raw: bytes) -> tuple[list[dict[str, Any]], bool]:
    """Validate a BulkResolveLibrariesRequest the way LML does: cap first, then fields."""
    body = _parse_object(raw)
    inputs = body.get("inputs")
    if isinstance(inputs, list) and len(inputs) > BULK_CAP:
        raise _Reject(413, {"message": f"Batch exceeded the {BULK_CAP}-item cap "
                                       f"(received {len(inputs)})."})
    errors = _list_errors(body, "inputs")
    include = body.get("include_tracks")
    if include is not None and not isinstance(include, bool):
        errors.append({"type": "bool_type", "loc": ["include_tracks"],
                       "msg": "Input should be a valid boolean"})
    if not errors:
        for i, item in enumerate(inputs or ()):
            if not isinstance(item, dict):
                errors.append({"type": "model_type", "loc": ["inputs", i],
                               "msg": "Input should be a valid dictionary or object"})
                continue
            for key, ok, kind in (("library_id", _is_int, "int"),
                                  ("artist_name", lambda v: isinstance(v, str), "string"),
                                  ("album_title", lambda v: isinstance(v, str), "string")):
                if key not in item:
                    errors.append({"type": "missing", "loc": ["inputs", i, key],
                                   "msg": "Field required"})
                elif not ok(item[key]):
                    errors.append({"type": f"{kind}_type", "loc": ["inputs", i, key],
                                   "msg": f"Input should be a valid {kind}"})
            legacy = item.get("legacy_release_id")
            if legacy is not None and not _is_int(legacy):
                errors.append({"type": "int_type", "loc": ["inputs", i, "legacy_release_id"],
                               "msg": "Input should be a valid integer"})
    if errors:
        raise _request_failed(422, errors)
    return inputs, bool(include)


def parse_refresh(raw: bytes) -> list[int]:
    """Validate a BulkCacheRefreshRequest: LML answers more than 50 ids with 400, not 413."""
    body = _parse_object(raw)
    ids = body.get("identity_ids")
    if isinstance(ids, list) and len(ids) > REFRESH_CAP:
        raise _Reject(400, {"message": f"Batch exceeded the {REFRESH_CAP}-item cap "
                                       f"(received {len(ids)})."})
    errors = _list_errors(body, "identity_ids")
    if not errors:
        errors = [{"type": "int_type", "loc": ["identity_ids", i],
                   "msg": "Input should be a valid integer"}
                  for i, value in enumerate(ids) if not _is_int(value)]
    if errors:
        raise _request_failed(422, errors)
    return ids


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], standin: StandIn) -> None:
        self.standin = standin
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close idle keep-alive connections so a stopped stand-in really is gone."""
        with self.connections_lock:
            open_sockets = list(self.connections)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lml-standin"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log is the record, and access logs could echo headers."""

    # -- plumbing -------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise _Reject(400, {"message": "Invalid Content-Length"}) from None
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            self.close_connection = True
            raise _Reject(400, {"message": "Client disconnected before the body was complete"})
        return body

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            try:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            except ValueError:
                self.close_connection = True
                raise _Reject(400, {"message": "Malformed chunked body"}) from None
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, record: RequestRecord, status: int, body: bytes,
              headers: dict[str, str] | None = None) -> None:
        record.status = status
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        lines = [f"HTTP/1.1 {status} {phrase}", "Server: lml-standin",
                 "Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + body)
        except OSError:  # the client gave up (e.g. its timeout fired during a hang)
            self.close_connection = True

    def _log(self, method: str, path: str) -> RequestRecord:
        record = RequestRecord(time=time.monotonic(), method=method, path=path)
        self.server.standin._append(record)
        return record

    # -- routing --------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        record = self._log("GET", path)
        if path == HEALTH_PATH:
            record.authorized = True
            self._send(record, 200, _dumps(self.server.standin._health()))
        elif path == STATS_PATH:
            self._send(record, 200, _dumps(self.server.standin.stats()))
        elif path in _POST_ROUTES:
            self._send(record, 405, _dumps({"message": "Method Not Allowed"}))
        else:
            self._send(record, 404, _dumps({"message": "Not Found"}))

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        record = self._log("POST", path)
        standin = self.server.standin
        try:
            raw = self._read_body()
            cfg = standin.config
            if path == HEALTH_PATH:
                raise _Reject(405, {"message": "Method Not Allowed"})
            if path not in _POST_ROUTES or (path == REFRESH_PATH and not cfg.refresh_enabled):
                raise _Reject(404, {"message": "Not Found"})
            self._authorize(cfg, record)
            if cfg.latency_ms > 0:
                standin._sleep(cfg.latency_ms / 1000)
            status, body, headers = standin._dispatch(path, raw, cfg, record)
        except _Reject as reject:
            status, body, headers = reject.status, _dumps(reject.body), reject.headers
        except Exception:  # never a traceback or header on the wire
            status, body, headers = 500, _dumps({"message": "Internal Server Error"}), {}
        self._send(record, status, body, headers)

    def _authorize(self, cfg: StandInConfig, record: RequestRecord) -> None:
        if cfg.api_key is None:
            record.authorized = True
            return
        if not cfg.api_key:
            raise _Reject(500, {"message": "Authentication is required but no key is configured"})
        header = self.headers.get("Authorization")
        if header is None:
            raise _Reject(401, {"message": "Missing authorization"})
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        valid = scheme.lower() == "bearer" and bool(token) and hmac.compare_digest(
            token.encode("utf-8", "surrogateescape"), cfg.api_key.encode("utf-8"))
        if not valid:
            raise _Reject(403, {"message": "Invalid token"})
        record.authorized = True


class StandIn:
    """An LML stand-in on loopback. Use as a context manager, or start()/stop()."""

    def __init__(self, config: StandInConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.config = config or StandInConfig()
        self.host, self.port = host, port
        self.url = ""
        self.requests: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._counter = 0  # validated /api requests so far: drives the fault rolls
        self._failed_first = 0  # failures issued under fail_first by the current config
        self._fail_config: StandInConfig | None = None
        self._minted: set[tuple[str, str]] = set()
        self._live_requests = 0
        self._capacity: Capacity | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> StandIn:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        host, port = self._server.server_address[:2]
        self.port = int(port)
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="lml-standin", daemon=True)
        self._thread.start()
        _ = self.capacity  # the capacity model (and its live load) starts with the server
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes requests sleeping in latency or a hang
        if self._capacity is not None:
            self._capacity.stop()
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    @property
    def capacity(self) -> Capacity | None:
        """The capacity model of the current config (a new config gets a fresh one)."""
        settings = self.config.capacity
        with self._lock:
            if self._capacity is not None and self._capacity.settings is not settings:
                self._capacity.stop()
                self._capacity = None
            if settings is not None and self._capacity is None:
                self._capacity = Capacity(settings)
                self._capacity.start()
            return self._capacity

    def stats(self) -> dict[str, Any]:
        capacity = self.capacity
        with self._lock:
            requests = len(self.requests)
        return {"requests": requests, "capacity": capacity.stats() if capacity else None}

    # -- internals used by the handler ----------------------------------------------------

    def _append(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _next_request(self, cfg: StandInConfig) -> tuple[int, bool]:
        """The request's number, and whether fail_first claims it. Assigning a new config
        object restarts fail_first; raising fail_first on the live one adds failures."""
        with self._lock:
            self._counter += 1
            if cfg is not self._fail_config:
                self._fail_config, self._failed_first = cfg, 0
            fail = self._failed_first < cfg.fail_first
            self._failed_first += fail
            return self._counter - 1, fail

    def _health(self) -> dict[str, Any]:
        capacity = self.capacity
        with self._lock:
            live = self._live_requests + (capacity.upstream_calls if capacity else 0)
        return {"status": "healthy", "version": __version__, "commit_sha": self.config.commit_sha,
                "discogs_breaker_state": "closed", "discogs_live_requests_total": live,
                "services": {"database": "ok", "discogs_api": "ok", "discogs_cache": "ok"}}

    def _dispatch(self, path: str, raw: bytes, cfg: StandInConfig, record: RequestRecord
                  ) -> tuple[int, bytes, dict[str, str]]:
        """Validate, apply faults, and answer one authorized /api request."""
        if path == BULK_PATH:
            try:
                inputs, include_tracks = parse_bulk(raw)
            except _Reject:
                record.batch_size = _batch_size(raw, "inputs")
                raise
            record.batch_size = len(inputs)
        elif path == REFRESH_PATH:
            try:
                ids = parse_refresh(raw)
            except _Reject:
                record.batch_size = _batch_size(raw, "identity_ids")
                raise
            record.batch_size = len(ids)
        else:
            request = self._parse_resolve(raw)
        n, fail_first = self._next_request(cfg)

        def roll(fault: str, rate: float) -> bool:
            return rate > 0 and stable_hash("standin-fault", cfg.seed, fault, n) / 2**64 < rate

        if roll("timeout", cfg.timeout_rate):
            self._sleep(cfg.hang_seconds)
        if fail_first or roll("error", cfg.error_rate):
            return self._injected_error(cfg, path)

        if path == BULK_PATH:
            refused = self._spend_budget(inputs)
            if refused is not None:
                return refused
            payload = self._bulk(inputs, include_tracks, cfg, roll, n)
        elif path == REFRESH_PATH:
            payload = self._refresh(ids)
        else:
            payload = self._resolve(request)
        body = _dumps(payload)
        if roll("malformed", cfg.malformed_rate):
            body = _malform(body, stable_hash("standin-malformed", cfg.seed, n))
        return 200, body, {}

    def _spend_budget(self, inputs: list[dict[str, Any]]
                      ) -> tuple[int, bytes, dict[str, str]] | None:
        """Charge the rows' cache misses to the upstream budget: queue until they are paid
        for, or answer 429 with Retry-After when the model refuses instead."""
        capacity = self.capacity
        if capacity is None:
            return None
        try:
            wait = capacity.charge_bulk(inputs)
        except Dry as dry:
            # Whole seconds on a real clock, as HTTP says; a faster clock needs fractions.
            value = (f"{math.ceil(dry.retry_after)}" if capacity.settings.time_scale == 1
                     else f"{dry.retry_after:.3f}")
            return 429, _dumps({"message": "Discogs budget exhausted"}), {"Retry-After": value}
        if wait > 0:
            self._sleep(wait)
        return None

    def _injected_error(self, cfg: StandInConfig, path: str) -> tuple[int, bytes, dict[str, str]]:
        status = cfg.error_status
        message = _INJECTED_MESSAGES.get(status) or HTTPStatus(status).phrase
        if status == 503 and path == REFRESH_PATH:
            message = "Provenance lookup failed: OperationalError"
        headers = {}
        if cfg.retry_after is not None and status in (429, 503):
            headers["Retry-After"] = f"{cfg.retry_after:g}"
        return status, _dumps({"message": message}), headers

    def _bulk(self, inputs: list[dict[str, Any]], include_tracks: bool, cfg: StandInConfig,
              roll: Any, n: int) -> dict[str, Any]:
        results = [verdict(item["artist_name"], item.get("legacy_release_id"), include_tracks,
                           library_id=item["library_id"], drift=cfg.drift) for item in inputs]
        stats = cache_stats(results) if cfg.cache_stats else None
        _corrupt(results, cfg, roll, stable_hash("standin-victim", cfg.seed, n))
        return {"results": results, "tracks_contract_version": 1 if include_tracks else None,
                "cache_stats": stats}

    def _refresh(self, ids: list[int]) -> dict[str, Any]:
        results = [refresh_item(identity_id) for identity_id in ids]
        calls = sum(1 + len(r["sources"]["discogs_release"]["artists"]) for r in results
                    if r["status"] == "warmed")
        with self._lock:
            self._live_requests += calls
        return {"results": results}

    @staticmethod
    def _parse_resolve(raw: bytes) -> dict[str, Any]:
        """A typed body in LML: failures are 422 "Request validation failed"."""
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            errors = [{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}]
        else:
            errors = resolve_errors(body)
        if errors:
            raise _Reject(422, {"message": "Request validation failed",
                                "details": {"errors": errors}})
        return body

    def _resolve(self, request: dict[str, Any]) -> dict[str, Any]:
        key = identity_key(request["source"], request["external_id"])
        with self._lock:
            minted = key not in self._minted
            self._minted.add(key)
        return {"identity_id": identity_id_for(key), "kind": "release", "minted": minted}


def _batch_size(raw: bytes, key: str) -> int | None:
    """The batch size for the log of a request that failed validation, when there is one."""
    try:
        value = json.loads(raw).get(key)
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    return len(value) if isinstance(value, list) else None


def _corrupt(results: list[dict[str, Any]], cfg: StandInConfig, roll: Any, h: int) -> None:
    """The bulk faults a consumer must detect: a result for an id not sent, another row's
    id repeated, a credit confidence outside 0..1, a value outside the enums, a short
    answer. Results are fresh top-level dicts."""
    if not results:
        return
    ids = [r["library_id"] for r in results]
    if roll("foreign", cfg.foreign_id_rate):
        i = h % len(results)
        results[i] = {**results[i], "library_id": max(ids) + 1 + (h >> 16) % 1000}
    if roll("duplicate", cfg.duplicate_id_rate):
        # Another row's answer carries this id: that row goes unanswered.
        sources = {"before": range(1, len(results)),
                   "after": range(len(results) - 1)}.get(cfg.duplicate_order,
                                                           range(len(results)))
        if sources:
            source = sources[(h >> 8) % len(sources)]
            targets = [j for j, r in enumerate(results) if r["library_id"] != ids[source]
                       and (cfg.duplicate_order != "before" or j < source)
                       and (cfg.duplicate_order != "after" or j > source)]
            if targets:
                j = targets[(h >> 24) % len(targets)]
                results[j] = {**results[j], "library_id": ids[source]}
    if roll("track_confidence", cfg.track_confidence_rate):
        for i, result in enumerate(results):
            _spoil_track_confidence(results, i, result, h)
    if cfg.out_of_band_rate:
        for i, result in enumerate(results):
            band = METHOD_BANDS.get(result.get("method") or "")
            if (result.get("kind") == "single_artist" and band is not None
                    and stable_hash("standin-out-of-band", cfg.seed, result["library_id"])
                    % 1000 < cfg.out_of_band_rate * 1000):
                results[i] = {**result, "confidence": round(band[0] - 0.05, 2)}
    if roll("bad_enum", cfg.bad_enum_rate):
        i = (h >> 32) % len(results)
        if (h >> 40) & 1:
            results[i] = {**results[i], "kind": "artist_group"}
        else:
            results[i] = {**results[i], "confidence": 1.5}
    if roll("short", cfg.short_rate):
        results.pop()


def _spoil_track_confidence(results: list[dict[str, Any]], i: int, result: dict[str, Any],
                            h: int) -> None:
    """One answered credit of a compilation gets a confidence outside 0..1 (tracks are
    shared read-only, so the result gets its own copies)."""
    tracks = result.get("tracks") or []
    answered = [k for k, t in enumerate(tracks) if t.get("resolved_artist_name") is not None]
    if result.get("kind") != "compilation" or not answered:
        return
    k = answered[stable_hash("standin-track-confidence", h, result["library_id"])
                 % len(answered)]
    spoiled = [dict(t) for t in tracks]
    spoiled[k]["confidence"] = 1.5 if k % 2 else -0.1
    results[i] = {**result, "tracks": spoiled}


def _malform(body: bytes, h: int) -> bytes:
    """A 200 whose body is not the JSON it claims to be: cut mid-way, or an HTML error page."""
    if h % 3 == 0:
        return b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    return body[: max(1, len(body) // 2)]


def serve(config: StandInConfig, host: str = "127.0.0.1", port: int = 0) -> None:
    """Run a stand-in in the foreground until SIGINT or SIGTERM."""
    done = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: done.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with StandIn(config, host, port) as standin:
            auth = "disabled" if config.api_key is None else "bearer key required"
            print(f"LML stand-in listening on {standin.url} (auth {auth})", flush=True)
            while not done.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
