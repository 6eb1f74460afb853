"""The LML HTTP client: auth, timeouts, retries with backoff, rate limiting.

Retryable: connection errors and timeouts, 429 (honouring Retry-After), 502/503/504.
Never retried: any other status (401/403/413/422 are permanent for the request), a
Retry-After longer than RETRY_AFTER_MAX_S, or a body over MAX_BODY_BYTES.

A call that failed the way a stopped or restarting LML fails (`is_outage`) is for the job
to wait out (library_identity.lml.outage), asking `healthy()` when LML is back.

Each request has a deadline (the timeout) from connecting to the last byte of the body,
however slowly the server sends it. Waits (backoff, rate limit) end early when the
client's `stop` event is set.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpcore
import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from library_identity import jsonfast, secrets
from library_identity.errors import LMLAuthError, LMLError, LMLInterrupted, LMLMalformedResponse
from library_identity.lml.limits import (
    LML_BULK_RESOLVE_CAP,
    MAX_TIMEOUT_S,
    MIN_REQUESTS_PER_MINUTE,
    RETRY_AFTER_MAX_S,
    check_settings,
)

if TYPE_CHECKING:
    from pyrate_limiter import Limiter

log = logging.getLogger(__name__)

BULK_RESOLVE_PATH = "/api/v1/identity/bulk-resolve-libraries"
REFRESH_PATH = "/api/v1/cache/refresh-for-identities"
IDENTITY_RESOLVE_PATH = "/api/v1/identity/resolve"
HEALTH_PATH = "/health"

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# What a proxy or LML itself answers while LML restarts or is down (429 is LML saying it is
# busy, not gone).
OUTAGE_STATUSES = frozenset({502, 503, 504})
# A full bulk-resolve batch with per-track credits stays far below this; a larger body is
# refused as a failed call rather than read into memory.
MAX_BODY_BYTES = 32 * 1024 * 1024
MESSAGE_MAX_CHARS = 200


# -- the per-request deadline -------------------------------------------------------------
# httpx's timeouts bound each socket operation; a server trickling one byte at a time
# never trips them. Every socket operation of a request instead gets at most what is left
# of the request's deadline (kept per thread: a sync request runs on one thread).
_deadline = threading.local()


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    at = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise expired("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(
            ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options: Any = None
                    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_tcp(
            host, port, _left(timeout, httpcore.ConnectTimeout), local_address,
            socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(
            path, _left(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _deadline_transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    """httpx's own transport with its connection pool on the deadline-aware backend."""
    transport = httpx.HTTPTransport(limits=limits)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(), max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry, network_backend=_DeadlineBackend())
    return transport


@dataclass
class CallResult:
    status: int
    body: Any
    latency_ms: float
    attempts: int


def normalise_base_url(url: str) -> str:
    """Strip a trailing '/' and '/api/v1', as the station's backend does."""
    url = url.strip().rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    return url.rstrip("/")


@dataclass
class LMLClient:
    base_url: str
    api_key: str | None = None
    timeout_s: float = 30.0
    max_attempts: int = 4
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    requests_per_minute: float | None = None
    transport: httpx.BaseTransport | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    stop: threading.Event | None = None  # set: waits end and no call is sent again
    # Told of every attempt (status, or None for a timeout or network error; its own
    # latency in seconds; Retry-After): how a pacer learns LML's load.
    on_attempt: Callable[[int | None, float, float | None], None] | None = None
    _http: httpx.Client = field(init=False, repr=False)
    _limiter: Limiter | None = field(init=False, repr=False, default=None)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        for name in ("timeout_s", "requests_per_minute"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number above 0, got {value}")
        if not self.timeout_s <= MAX_TIMEOUT_S:
            raise ValueError(f"timeout_s must be at most {MAX_TIMEOUT_S:g}, got {self.timeout_s}")
        if self.requests_per_minute is not None and \
                self.requests_per_minute < MIN_REQUESTS_PER_MINUTE:
            raise ValueError(f"requests_per_minute must be at least {MIN_REQUESTS_PER_MINUTE:g}, "
                             f"got {self.requests_per_minute}")
        secrets.register(self.api_key)
        check_settings(self.base_url, self.api_key)
        self.base_url = normalise_base_url(self.base_url)
        headers = {"Accept": "application/json", "User-Agent": "library-identity",
                   "Accept-Encoding": "gzip, deflate"}  # what _Inflater undoes
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        self._http = httpx.Client(base_url=self.base_url, headers=headers,
                                  timeout=httpx.Timeout(self.timeout_s, connect=10.0),
                                  transport=self.transport or _deadline_transport(limits),
                                  limits=limits)
        if self.requests_per_minute:
            # One request per interval: the observed rate never exceeds the limit,
            # even at the start of a run.
            from pyrate_limiter import Duration, Limiter, Rate  # only a capped client

            interval_ms = max(1, int(Duration.MINUTE.value / self.requests_per_minute))
            self._limiter = Limiter(Rate(1, interval_ms))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LMLClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- routes ---------------------------------------------------------------
    def bulk_resolve(self, inputs: list[dict[str, Any]], *, include_tracks: bool) -> CallResult:
        if not 1 <= len(inputs) <= LML_BULK_RESOLVE_CAP:
            raise ValueError(f"bulk-resolve takes 1..{LML_BULK_RESOLVE_CAP} inputs, "
                             f"got {len(inputs)}")
        return self._post(BULK_RESOLVE_PATH,
                          {"inputs": inputs, "include_tracks": include_tracks})

    def refresh_for_identities(self, identity_ids: list[int], *,
                               timeout_s: float | None = None) -> CallResult:
        return self._post(REFRESH_PATH, {"identity_ids": identity_ids}, timeout_s=timeout_s)

    def resolve_identity(self, source: str, external_id: str, *,
                         timeout_s: float | None = None) -> CallResult:
        body = {"kind": "release", "source": source, "external_id": external_id}
        return self._post(IDENTITY_RESOLVE_PATH, body, timeout_s=timeout_s)

    def health(self, *, timeout_s: float = 10.0) -> CallResult:
        return self._call("GET", HEALTH_PATH, None, timeout_s=timeout_s, retry=False,
                          accept_statuses=frozenset({200, 503}))

    def healthy(self, *, timeout_s: float = 10.0) -> tuple[bool, float | None]:
        """GET /health once: whether LML answered 200, and the Retry-After it sent. Any
        failure to answer is False; a stop request is the caller's to notice."""
        try:
            self._acquire()
            status, headers, _ = self._send("GET", HEALTH_PATH, None, timeout_s)
        except (httpx.HTTPError, LMLError):
            return False, None
        return status == 200, _retry_after(headers)

    def probe(self, path: str, body: Any, *, timeout_s: float = 10.0) -> int:
        """POST once, without retries, and return the status (for capability gates)."""
        self._acquire()
        try:
            status, _, _ = self._send("POST", path, body, timeout_s)
        except httpx.HTTPError as exc:
            raise LMLError(f"LML probe of {path} failed: {type(exc).__name__}",
                           retryable=True) from None
        return status

    # -- machinery ------------------------------------------------------------
    def _post(self, path: str, body: Any, *, timeout_s: float | None = None) -> CallResult:
        return self._call("POST", path, body, timeout_s=timeout_s, retry=True,
                          accept_statuses=frozenset({200}))

    def _call(self, method: str, path: str, body: Any, *, timeout_s: float | None, retry: bool,
              accept_statuses: frozenset[int]) -> CallResult:
        attempts = 0
        started = time.perf_counter()

        def once() -> CallResult:
            nonlocal attempts
            attempts += 1
            self._acquire()
            attempt_started = time.perf_counter()
            try:
                status, headers, content = self._send(method, path, body, timeout_s)
            except httpx.TimeoutException as exc:
                self._report(None, attempt_started, None)
                raise LMLError(f"LML {path} timed out ({type(exc).__name__})",
                               retryable=True, attempts=attempts) from None
            except httpx.TransportError as exc:
                self._report(None, attempt_started, None)
                raise LMLError(f"LML {path} unreachable ({type(exc).__name__})",
                               retryable=True, attempts=attempts) from None
            except LMLError as exc:
                exc.attempts = attempts
                raise
            self._report(status, attempt_started, _retry_after(headers))
            return self._interpret(status, headers, content, path, attempts, accept_statuses,
                                   started)

        try:
            if not retry:
                return once()
            retrying = Retrying(
                stop=stop_after_attempt(self.max_attempts),
                wait=self._wait,
                retry=retry_if_exception(lambda e: isinstance(e, LMLError) and e.retryable),
                before_sleep=self._log_retry,
                sleep=self._sleep,
                reraise=True,
            )
            return retrying(once)
        except LMLInterrupted as exc:
            exc.attempts = attempts
            raise

    def _send(self, method: str, path: str, body: Any, timeout_s: float | None
              ) -> tuple[int, httpx.Headers, bytes]:
        """One HTTP request under its deadline; the body read up to max_body_bytes."""
        timeout = timeout_s or self.timeout_s
        _deadline.at = time.monotonic() + timeout
        try:
            with self._http.stream(method, path, json=body, timeout=timeout) as response:
                return response.status_code, response.headers, self._read(response, path)
        finally:
            _deadline.at = None

    def _read(self, response: httpx.Response, path: str) -> bytes:
        """The body, decoded, up to max_body_bytes. Inflating is bounded too: no network
        read is inflated past the cap, so a small compressed bomb costs at most the cap."""
        limit = self.max_body_bytes
        declared = response.headers.get("Content-Length", "")
        too_large = LMLError(f"LML {path} sent a body larger than {limit:,} bytes "
                             f"(HTTP {response.status_code}); refused")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        decoder = _Inflater(response.headers.get("Content-Encoding", ""), path, limit)
        chunks: list[bytes] = []
        try:
            for raw in response.iter_raw():
                chunks.extend(decoder.feed(raw))
            chunks.append(decoder.flush())
        except zlib.error:
            raise LMLMalformedResponse(f"LML {path} sent a body that does not inflate "
                                       f"(HTTP {response.status_code})",
                                       status=response.status_code) from None
        except _TooLarge:
            raise too_large from None
        return b"".join(chunks)

    def _acquire(self) -> None:
        """Wait for the rate limit, in short steps so a stop request ends the wait."""
        if self._limiter is None:
            return
        while not self._limiter.try_acquire("lml", blocking=True, timeout=0.2):
            self._check_stop()

    def _sleep(self, seconds: float) -> None:
        if self.stop is None:
            time.sleep(seconds)
        elif self.stop.wait(seconds):
            self._check_stop()

    def _check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise LMLInterrupted("stopped while waiting to call LML again")

    def _interpret(self, status: int, headers: httpx.Headers, content: bytes, path: str,
                   attempts: int, accept_statuses: frozenset[int], started: float
                   ) -> CallResult:
        latency_ms = (time.perf_counter() - started) * 1000
        if status in (401, 403):
            raise LMLAuthError(
                f"LML refused the API key on {path} (HTTP {status}: {_message(content)}); "
                "check LML_API_KEY", status=status, attempts=attempts)
        if status not in accept_statuses:
            raise _status_error(status, headers, content, path, attempts)
        try:
            body = jsonfast.loads(content)
        except ValueError:
            raise LMLMalformedResponse(f"LML {path} answered HTTP {status} with a body that is "
                                       f"not JSON ({len(content)} bytes)",
                                       status=status, attempts=attempts) from None
        return CallResult(status=status, body=body, latency_ms=latency_ms, attempts=attempts)

    def _report(self, status: int | None, started: float, retry_after: float | None) -> None:
        if self.on_attempt is not None:
            self.on_attempt(status, time.perf_counter() - started, retry_after)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = wait_random_exponential(multiplier=self.backoff_initial_s,
                                          max=self.backoff_max_s)(state)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return max(retry_after, backoff)  # at most RETRY_AFTER_MAX_S: see _status_error
        return backoff

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("lml_retry attempt=%s error=%s", state.attempt_number, exc)


class _TooLarge(Exception):
    pass


class _Inflater:
    """A body's Content-Encoding undone a bounded piece at a time: identity, gzip or deflate
    (zlib-wrapped or raw, as servers differ), the encodings this client accepts. No piece
    takes the body past `limit` + 1 bytes: past `limit` it raises _TooLarge."""

    def __init__(self, encoding: str, path: str, limit: int) -> None:
        self.encoding = encoding.strip().lower()
        self.limit, self.size = limit, 0
        self._sniff = self.encoding == "deflate"
        if self.encoding in ("", "identity"):
            self._inflater = None
        elif self.encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.encoding == "deflate":
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS)
        else:
            raise LMLError(f"LML {path} sent a body in an encoding this client does not "
                           f"accept ({encoding[:40]!r}); refused")

    def _count(self, piece: bytes) -> bytes:
        self.size += len(piece)
        if self.size > self.limit:
            raise _TooLarge
        return piece

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._inflater is None:
            yield self._count(data)
            return
        if self._sniff and data:
            self._sniff = False
            try:
                zlib.decompressobj(zlib.MAX_WBITS).decompress(data[:2])
            except zlib.error:  # no zlib header: raw deflate
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        while data:
            yield self._count(self._inflater.decompress(data, self.limit - self.size + 1))
            data = self._inflater.unconsumed_tail

    def flush(self) -> bytes:
        return b"" if self._inflater is None else self._count(self._inflater.flush())


def is_outage(error: LMLError) -> bool:
    """Whether a failed call failed the way a stopped or restarting LML makes calls fail:
    refused or dropped connections, timeouts, 502/503/504. (A body over the cap, a stop
    request and other statuses are not.)"""
    if isinstance(error, LMLInterrupted | LMLAuthError | LMLMalformedResponse):
        return False
    if error.status is None:
        return error.retryable  # a network error or a timeout; not a body over the cap
    return error.status in OUTAGE_STATUSES


def _status_error(status: int, headers: httpx.Headers, content: bytes, path: str,
                  attempts: int) -> LMLError:
    retry_after = _retry_after(headers)
    message = f"LML {path} answered HTTP {status}: {_message(content)}"
    retryable = status in RETRYABLE_STATUSES
    if retryable and retry_after is not None and retry_after > RETRY_AFTER_MAX_S:
        retryable = False
        message += (f" (asked to retry after {retry_after:g} s, longer than the "
                    f"{RETRY_AFTER_MAX_S:g} s this client waits)")
    error = LMLError(message, status=status, retryable=retryable, attempts=attempts)
    error.retry_after = retry_after  # type: ignore[attr-defined]
    return error


def _message(content: bytes) -> str:
    """The error's message for humans: scrubbed of secrets first, then cut, so no part of
    a secret survives the cut."""
    text = content.decode("utf-8", "replace")
    try:
        body = jsonfast.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        text = body["message"].encode("utf-8", "replace").decode()  # no lone surrogate
    return secrets.scrub(text)[:MESSAGE_MAX_CHARS]


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN: as if absent
