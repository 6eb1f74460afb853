"""The LML HTTP client: auth, timeouts, retries with backoff, rate limiting.

Retryable: connection errors and timeouts, 429 (honouring Retry-After), 502/503/504.
Never retried: any other status (401/403/413/422 are permanent for the request).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pyrate_limiter import Duration, Limiter, Rate
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from loader import jsonfast, secrets

log = logging.getLogger(__name__)

BULK_RESOLVE_PATH = "/api/v1/identity/bulk-resolve-libraries"
REFRESH_PATH = "/api/v1/cache/refresh-for-identities"
IDENTITY_RESOLVE_PATH = "/api/v1/identity/resolve"
HEALTH_PATH = "/health"

LML_BULK_RESOLVE_CAP = 1000
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


class LMLError(RuntimeError):
    """A call to LML failed; `retryable` says whether the failure was transient."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False,
                 attempts: int = 1) -> None:
        super().__init__(secrets.scrub(message))
        self.status = status
        self.retryable = retryable
        self.attempts = attempts


class LMLAuthError(LMLError):
    """LML refused the credentials (401/403): no point in calling it again this run."""


class LMLMalformedResponse(LMLError):
    """LML answered 200 with a body that is not the JSON object the contract promises."""


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
    # Told of every attempt (status, or None for a timeout or network error; its own
    # latency in seconds; Retry-After): how a pacer learns LML's load.
    on_attempt: Callable[[int | None, float, float | None], None] | None = None
    _http: httpx.Client = field(init=False, repr=False)
    _limiter: Limiter | None = field(init=False, repr=False, default=None)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = normalise_base_url(self.base_url)
        secrets.register(self.api_key)
        headers = {"Accept": "application/json", "User-Agent": "library-identity"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        self._http = httpx.Client(base_url=self.base_url, headers=headers,
                                  timeout=httpx.Timeout(self.timeout_s, connect=10.0),
                                  transport=self.transport,
                                  limits=httpx.Limits(max_connections=32,
                                                      max_keepalive_connections=32))
        if self.requests_per_minute:
            # One request per interval: the observed rate never exceeds the limit,
            # even at the start of a run.
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

    def probe(self, path: str, body: Any, *, timeout_s: float = 10.0) -> int:
        """POST once, without retries, and return the status (for capability gates)."""
        if self._limiter is not None:
            self._limiter.try_acquire("lml")
        try:
            response = self._http.post(path, json=body, timeout=timeout_s)
        except httpx.HTTPError as exc:
            raise LMLError(f"LML probe of {path} failed: {type(exc).__name__}",
                           retryable=True) from None
        return response.status_code

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
            if self._limiter is not None:
                self._limiter.try_acquire("lml")
            attempt_started = time.perf_counter()
            try:
                timeout = timeout_s if timeout_s else httpx.USE_CLIENT_DEFAULT
                response = self._http.request(method, path, json=body, timeout=timeout)
            except httpx.TimeoutException as exc:
                self._report(None, attempt_started, None)
                raise LMLError(f"LML {path} timed out ({type(exc).__name__})",
                               retryable=True, attempts=attempts) from None
            except httpx.TransportError as exc:
                self._report(None, attempt_started, None)
                raise LMLError(f"LML {path} unreachable ({type(exc).__name__})",
                               retryable=True, attempts=attempts) from None
            self._report(response.status_code, attempt_started, _retry_after(response))
            return self._interpret(response, path, attempts, accept_statuses, started)

        if not retry:
            return once()
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, LMLError) and e.retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )
        return retrying(once)

    def _interpret(self, response: httpx.Response, path: str, attempts: int,
                   accept_statuses: frozenset[int], started: float) -> CallResult:
        status = response.status_code
        latency_ms = (time.perf_counter() - started) * 1000
        if status in (401, 403):
            raise LMLAuthError(
                f"LML refused the API key on {path} (HTTP {status}: {_message(response)}); "
                "check LML_API_KEY", status=status, attempts=attempts)
        if status not in accept_statuses:
            error = LMLError(f"LML {path} answered HTTP {status}: {_message(response)}",
                             status=status, retryable=status in RETRYABLE_STATUSES,
                             attempts=attempts)
            error.retry_after = _retry_after(response)  # type: ignore[attr-defined]
            raise error
        try:
            body = jsonfast.loads(response.content)
        except ValueError:
            raise LMLMalformedResponse(f"LML {path} answered HTTP {status} with a body that is "
                                       f"not JSON ({len(response.content)} bytes)",
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
            return min(max(retry_after, backoff), max(self.backoff_max_s, retry_after))
        return backoff

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("lml_retry attempt=%s error=%s", state.attempt_number, exc)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return secrets.scrub(response.text[:200])
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return secrets.scrub(body["message"][:200])
    return secrets.scrub(str(body)[:200])


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
