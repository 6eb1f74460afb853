"""The stand-in's model of LML's capacity: an upstream budget spent by cache misses,
queueing or 429 + Retry-After when it runs dry, the station's live lookups on the same
budget, and a faster clock for tests."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import CLI

from library_identity.demo.standin import StandIn, StandInConfig
from library_identity.demo.standin.capacity import CapacitySettings
from library_identity.demo.standin.server import STATS_PATH

KEY = "capacity-key"
BULK = "/api/v1/identity/bulk-resolve-libraries"


def rows(start: int, n: int, artist: str = "Artist {i}") -> list[dict[str, Any]]:
    return [{"library_id": i, "artist_name": artist.format(i=i), "album_title": "A",
             "legacy_release_id": i} for i in range(start, start + n)]


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[StandIn] = []

    def start(**capacity: Any) -> tuple[StandIn, httpx.Client]:
        standin = StandIn(StandInConfig(api_key=KEY, capacity=CapacitySettings(**capacity)))
        started.append(standin.start())
        client = httpx.Client(base_url=standin.url, timeout=30,
                              headers={"Authorization": f"Bearer {KEY}"})
        return standin, client

    yield start
    for standin in started:
        standin.stop()


def post(client: httpx.Client, inputs: list[dict[str, Any]]) -> httpx.Response:
    return client.post(BULK, json={"inputs": inputs, "include_tracks": False})


def test_misses_spend_the_budget_hits_are_free_and_dry_means_429(serve: Any) -> None:
    _, client = serve(per_minute=60, burst=5, when_dry="429")
    assert post(client, rows(1, 5)).status_code == 200  # five misses: the bucket is empty
    again = post(client, rows(1, 5))
    assert again.status_code == 200  # the same five names: cache hits, no budget needed
    refused = post(client, rows(6, 1))
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1  # whole seconds on a real clock
    stats = client.get(STATS_PATH).json()["capacity"]
    assert stats["cache_misses"] == 5 and stats["cache_hits"] == 5
    assert stats["upstream_calls"] == 5 and stats["refused_429"] == 1
    # Many rows of one artist are one lookup.
    assert post(client, rows(100, 50, artist="Artist 1")).status_code == 200


def test_a_faster_clock_refills_in_time_for_the_retry(serve: Any) -> None:
    _, client = serve(per_minute=600, burst=2, when_dry="429", time_scale=10)
    assert post(client, rows(1, 30)).status_code == 200  # 28 calls of debt
    refused = post(client, rows(40, 1))
    assert refused.status_code == 429
    retry_after = float(refused.headers["Retry-After"])
    # 100 calls a real second: the debt is gone in about 0.29 s.
    assert 0.2 < retry_after < 0.4
    time.sleep(retry_after)
    assert post(client, rows(40, 1)).status_code == 200


def test_queueing_when_dry(serve: Any) -> None:
    standin, client = serve(per_minute=600, burst=10, when_dry="queue", time_scale=10)
    started = time.monotonic()
    assert post(client, rows(1, 60)).status_code == 200
    # 50 calls beyond the burst at 100 a real second: the request waited for them.
    assert time.monotonic() - started >= 0.45
    stats = standin.stats()["capacity"]
    assert stats["bulk_wait_p95_s"] >= 4.5  # in the model's time: about 5 s


def test_live_lookups_wait_when_bulk_traffic_drains_the_budget(serve: Any) -> None:
    # 60 live lookups a model minute against a budget of 120: alone they never wait.
    standin, client = serve(per_minute=120, burst=5, when_dry="queue", live_per_minute=60,
                            time_scale=30)
    time.sleep(0.6)
    quiet = standin.stats()["capacity"]
    assert quiet["live_lookups"] >= 5
    assert quiet["live_wait_p95_s"] == 0.0
    assert post(client, rows(1, 100)).status_code == 200  # ~95 calls of debt
    busy = standin.stats()["capacity"]
    assert busy["live_lookups"] > quiet["live_lookups"]
    assert busy["live_wait_max_s"] > 10  # model seconds behind the bulk request
    health = client.get("/health").json()
    assert health["discogs_live_requests_total"] >= 100


def test_cli_refuses_live_load_without_a_budget() -> None:
    proc = subprocess.run([*CLI, "lml-standin", "--port", "0",
                           "--live-per-minute", "10"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "--upstream-per-minute" in proc.stderr
