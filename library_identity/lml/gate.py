"""Checks before a job's first batch: LML answers, serves the route, and takes our key."""

from __future__ import annotations

from typing import Any

from library_identity.errors import LMLAuthError, LMLError, LMLRouteMissing, LMLUnavailable
from library_identity.lml.client import LMLClient


def check_health(client: LMLClient) -> None:
    """GET /health must answer 200 (healthy or degraded)."""
    try:
        result = client.health()
    except LMLError as exc:
        raise LMLUnavailable(f"LML is not reachable at {client.base_url}: {exc}") from None
    if result.status != 200:
        raise LMLUnavailable(f"LML at {client.base_url} reports itself unhealthy "
                             f"(HTTP {result.status})")


def require_route(client: LMLClient, path: str, invalid_body: Any) -> int:
    """Probe `path` with a body LML must reject as invalid: any answer but 404/405
    proves the route exists, 422 being the expected one, and anything but 401/403 proves
    the key is accepted, even on a run with nothing to send. Returns the probe's status."""
    try:
        status = client.probe(path, invalid_body)
    except LMLError as exc:
        raise LMLUnavailable(f"LML at {client.base_url} did not answer the probe of {path}: "
                             f"{exc}") from None
    if status in (404, 405):
        raise LMLRouteMissing(f"LML at {client.base_url} has no {path} (probe answered HTTP "
                              f"{status}); this LML deployment cannot serve the job, nothing "
                              "was sent")
    if status in (401, 403):
        raise LMLAuthError(f"LML refused the API key on {path} (HTTP {status}); check "
                           "LML_API_KEY", status=status)
    return status
