"""The LML stand-in answers as LML does (routes, auth, caps, status codes, error bodies)
over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from library_identity.demo import synthetic
from library_identity.demo.standin import StandIn, StandInConfig
from library_identity.demo.standin.verdicts import METHOD_BANDS, SOURCES, canonical_name, verdict

ROOT = Path(__file__).resolve().parent.parent
KEY = "standin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
BULK = "/api/v1/identity/bulk-resolve-libraries"
REFRESH = "/api/v1/cache/refresh-for-identities"
RESOLVE = "/api/v1/identity/resolve"
RESULT_KEYS = {"kind", "library_id", "main", "method", "confidence", "provenance",
               "tracks_attempted", "tracks"}
MAIN_KEYS = {"discogs_artist_id", "musicbrainz_artist_id", "wikidata_qid",
             "spotify_artist_id", "apple_music_artist_id", "bandcamp_id"}
TRACK_KEYS = {"track_position", "artist_name", "track_title", "resolved_artist_name",
              "confidence", "method", "sources"}


@pytest.fixture(scope="module")
def shared() -> Iterator[StandIn]:
    with StandIn() as standin:
        yield standin


@pytest.fixture
def standin(shared: StandIn) -> StandIn:
    """The module's server, reset to the default behaviour for each test."""
    shared.config = StandInConfig()
    shared.clear_log()
    return shared


@pytest.fixture
def client(standin: StandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=standin.url, headers=AUTH, timeout=10) as c:
        yield c


def row(library_id: int, artist: str, legacy: int | None = None) -> dict[str, Any]:
    return {"library_id": library_id, "artist_name": artist, "album_title": "Album",
            "legacy_release_id": legacy}


def rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [row(i, synthetic.artist_name(i), i) for i in range(start, start + n)]


def bulk(client: httpx.Client, inputs: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    return client.post(BULK, json={"inputs": inputs, **extra})


def one(client: httpx.Client, artist: str, **extra: Any) -> dict[str, Any]:
    response = bulk(client, [row(1, artist, extra.pop("legacy", None))], **extra)
    assert response.status_code == 200, response.text
    return response.json()["results"][0]


def identity(result: dict[str, Any]) -> tuple[Any, ...]:
    return (result["kind"], result["main"], result["method"], result["confidence"],
            result["provenance"])


# -- health and auth ----------------------------------------------------------------------


def test_health_needs_no_auth_and_ignores_faults(standin: StandIn) -> None:
    standin.config.error_rate = 1.0
    standin.config.latency_ms = 2000
    started = time.monotonic()
    response = httpx.get(f"{standin.url}/health")
    assert time.monotonic() - started < 1
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["version"] == "0.1.0"
    assert body["commit_sha"] is None
    assert set(body["services"]) == {"database", "discogs_api", "discogs_cache"}
    assert httpx.get(f"{standin.url}/version").status_code == 404


@pytest.mark.parametrize("path", [BULK, REFRESH, RESOLVE])
def test_auth_rules_on_every_api_route(standin: StandIn, path: str) -> None:
    body = {"inputs": [row(1, "Aphex Twin")], "identity_ids": [1],
            "kind": "release", "source": "discogs_release", "external_id": "1"}
    with httpx.Client(base_url=standin.url) as c:
        missing = c.post(path, json=body)
        assert (missing.status_code, missing.json()) == (401, {"message": "Missing authorization"})
        for header in (f"Bearer {KEY}x", "Bearer", f"Token {KEY}", KEY, f"Basic {KEY}",
                       f"Bearer {KEY} x"):
            bad = c.post(path, json=body, headers={"Authorization": header})
            assert (bad.status_code, bad.json()) == (403, {"message": "Invalid token"}), header
            assert KEY not in bad.text
        for scheme in ("Bearer", "bearer", "BEARER"):
            ok = c.post(path, json=body, headers={"Authorization": f"{scheme} {KEY}"})
            assert ok.status_code == 200, scheme
    flags = [(r.status, r.authorized) for r in standin.requests]
    assert flags[0] == (401, False) and flags[-1] == (200, True)
    assert KEY not in repr(standin.requests)


def test_auth_disabled_and_misconfigured(standin: StandIn) -> None:
    standin.config.api_key = None
    assert httpx.post(f"{standin.url}{BULK}", json={"inputs": [row(1, "x")]}).status_code == 200
    standin.config.api_key = ""  # auth required, but no key configured
    assert httpx.post(f"{standin.url}{BULK}", json={"inputs": [row(1, "x")]},
                      headers=AUTH).status_code == 500


# -- bulk-resolve: caps, validation, shape ------------------------------------------------


def test_bulk_cap_is_1000_and_counted_before_validation(client: httpx.Client) -> None:
    assert len(bulk(client, rows(1000)).json()["results"]) == 1000
    over = bulk(client, rows(1001))
    assert over.status_code == 413
    assert over.json() == {"message": "Batch exceeded the 1000-item cap (received 1001)."}
    garbage = client.post(BULK, json={"inputs": [{"nope": 1}] * 1200})
    assert garbage.status_code == 413
    assert "received 1200" in garbage.json()["message"]


@pytest.mark.parametrize("payload, status", [
    (b"{not json", 400),
    (b"[1, 2]", 400),
    (b'"inputs"', 400),
    (b"", 400),
    (b"{}", 422),
    (b'{"inputs": []}', 422),
    (b'{"inputs": {"library_id": 1}}', 422),
    (b'{"inputs": [1]}', 422),
    (b'{"inputs": [{"artist_name": "a", "album_title": "b"}]}', 422),
    (b'{"inputs": [{"library_id": "1", "artist_name": "a", "album_title": "b"}]}', 422),
    (b'{"inputs": [{"library_id": true, "artist_name": "a", "album_title": "b"}]}', 422),
    (b'{"inputs": [{"library_id": 1, "artist_name": null, "album_title": "b"}]}', 422),
    (b'{"inputs": [{"library_id": 1, "artist_name": "a"}]}', 422),
    (b'{"inputs": [{"library_id": 1, "artist_name": "a", "album_title": "b",'
     b' "legacy_release_id": "9"}]}', 422),
    (b'{"inputs": [{"library_id": 1, "artist_name": "a", "album_title": "b"}],'
     b' "include_tracks": "yes"}', 422),
])
def test_bulk_validation_errors(client: httpx.Client, payload: bytes, status: int) -> None:
    response = client.post(BULK, content=payload, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    body = response.json()
    assert body["message"] == "Request failed"
    assert isinstance(body["details"]["detail"], list) and body["details"]["detail"]


def test_bulk_order_duplicates_and_explicit_nulls(client: httpx.Client) -> None:
    inputs = [row(30, "Björk"), row(10, "Various Artists", 77), row(20, "zz unknown qq"),
              row(30, "Björk"), row(10, "Various Artists", 77)]
    inputs[2]["artist_name"] = next(synthetic.artist_name(i) for i in range(100)
                                    if one(client, synthetic.artist_name(i))["kind"]
                                    == "unresolved")
    inputs[3]["legacy_release_id"] = None
    inputs[4].pop("legacy_release_id")
    response = bulk(client, inputs)
    raw = json.loads(response.content)
    assert set(raw) == {"results", "tracks_contract_version", "cache_stats"}
    assert raw["tracks_contract_version"] is None and raw["cache_stats"] is None
    results = raw["results"]
    assert [r["library_id"] for r in results] == [30, 10, 20, 30, 10]
    assert all(set(r) == RESULT_KEYS for r in results)
    assert results[0] == results[3] and results[1] == results[4]
    assert [r["kind"] for r in results[:3]] == ["single_artist", "compilation", "unresolved"]
    for r in results[1:3]:
        assert (r["main"], r["method"], r["confidence"], r["provenance"]) == (None, None, None, [])
    assert set(results[0]["main"]) == MAIN_KEYS
    assert all(r["tracks_attempted"] is None and r["tracks"] is None for r in results)


def test_tracks_contract_version_rule(client: httpx.Client) -> None:
    assert bulk(client, rows(3), include_tracks=True).json()["tracks_contract_version"] == 1
    for extra in ({"include_tracks": False}, {"include_tracks": None}, {}):
        body = bulk(client, rows(3), **extra).json()
        assert "tracks_contract_version" in body and body["tracks_contract_version"] is None


# -- verdicts -----------------------------------------------------------------------------


@pytest.mark.parametrize("name, is_va", [
    ("Various Artists-Rock-Y", True), ("V.A.", True), ("Various", True),
    ("The Soundtrack of Our Lives", False), ("The Various", False),
    ("Various Production", False), ("Original Motion Picture Soundtrack", False),
    ("various artists", True), ("V/A", True), ("Soundtrack", True), ("Compilation", True),
    ("Soundtracks: Vol 2", True), ("Various Artistsxyz", False), ("VA", False),
])
def test_va_detection_table(client: httpx.Client, name: str, is_va: bool) -> None:
    result = one(client, name)
    assert (result["kind"] == "compilation") is is_va
    if is_va:
        assert (result["main"], result["method"], result["confidence"]) == (None, None, None)
        assert result["provenance"] == []


@pytest.mark.parametrize("a, b", [
    ("Björk", "bjork"), ("Simon & Garfunkel", "Simon and Garfunkel"),
    ("Guns N\u2019 Roses", "guns n' roses"), ("The Beatles", "Beatles"),
    ("Tom Waits ", "tom   waits"), ("BTS (방탄소년단)", "BTS"), ("Sigur Rós", "SIGUR ROS"),
])
def test_canonical_forms_resolve_to_the_same_identity(client: httpx.Client, a: str,
                                                      b: str) -> None:
    assert canonical_name(a) == canonical_name(b)
    assert identity(one(client, a)) == identity(one(client, b))


def test_canonical_form_rules() -> None:
    assert canonical_name("Hall&Oates") == "hall&oates"  # no whitespace round the ampersand
    assert canonical_name("Simon & Garfunkel") == "simon and garfunkel"
    assert canonical_name("\uff21\uff22\uff23") == "abc"  # fullwidth letters, NFKC
    assert canonical_name("The The") == "the"
    assert canonical_name("Sunn O)))") == "sunn o)))"
    # The pairs above must compare known identities, not two "unresolved" answers.
    known = [verdict(name, None, False)["kind"] for name in ("Björk", "Simon & Garfunkel")]
    assert known == ["single_artist", "single_artist"]


def _check_entry(entry: dict[str, Any]) -> None:
    assert set(entry) == {"source", "method", "confidence", "external_id"}
    assert entry["source"] in SOURCES
    assert (entry["confidence"] is None) is (entry["external_id"] is None)
    if entry["external_id"] is not None:
        assert isinstance(entry["external_id"], str)
        low, high = METHOD_BANDS[entry["method"]]
        assert low <= entry["confidence"] <= high


def test_single_artist_verdicts_follow_the_bands_and_composition(client: httpx.Client) -> None:
    results = [r for start in (0, 1000, 2000)
               for r in bulk(client, rows(1000, start)).json()["results"]]
    kinds = {k: sum(r["kind"] == k for r in results) for k in ("single_artist", "unresolved")}
    assert 0.7 < kinds["single_artist"] / len(results) < 0.9
    methods = set()
    null_legs = 0
    for r in results:
        if r["kind"] != "single_artist":
            continue
        method, confidence = r["method"], r["confidence"]
        methods.add(method)
        low, high = METHOD_BANDS[method]
        assert confidence >= 0.70 and low <= confidence <= high, r
        assert set(r["main"]) == MAIN_KEYS
        assert r["main"]["discogs_artist_id"] is None or type(r["main"]["discogs_artist_id"]) is int
        survivors = [p for p in r["provenance"] if p["external_id"] is not None]
        null_legs += len(survivors) < len(r["provenance"])
        assert survivors
        for entry in r["provenance"]:
            _check_entry(entry)
        held = {p["source"]: p["external_id"] for p in survivors}
        for source, key in zip(SOURCES, sorted(MAIN_KEYS, key=_main_order), strict=True):
            value = r["main"][key]
            assert held.get(source) == (None if value is None else str(value))
        if method == "cross_source_agreement":
            assert confidence == max(0.95, min(p["confidence"] for p in survivors))
        else:
            weakest = min(survivors, key=lambda p: (p["confidence"], SOURCES.index(p["source"])))
            assert (weakest["method"], weakest["confidence"]) == (method, confidence)
    assert {"exact_match", "cross_source_agreement", "name_variation", "trigram"} <= methods
    assert null_legs > 0  # the consumer's "skip null external_id" path gets exercised
    mbid = next(r["main"]["musicbrainz_artist_id"] for r in results
                if r["main"] and r["main"]["musicbrainz_artist_id"])
    assert len(mbid) == 36 and mbid.count("-") == 4
    qid = next(r["main"]["wikidata_qid"] for r in results
               if r["main"] and r["main"]["wikidata_qid"])
    assert qid[0] == "Q" and qid[1:].isdigit()


def _main_order(key: str) -> int:
    return ["discogs_artist_id", "musicbrainz_artist_id", "wikidata_qid", "spotify_artist_id",
            "apple_music_artist_id", "bandcamp_id"].index(key)


def test_compilation_tracks(client: httpx.Client) -> None:
    inputs = [row(i, "Various Artists", 1_000_000 + i) for i in range(200)]
    results = bulk(client, inputs, include_tracks=True).json()["results"]
    states = {(r["tracks_attempted"], bool(r["tracks"])) for r in results}
    assert states == {(False, False), (True, False), (True, True)}
    failed = 0
    for r, sent in zip(results, inputs, strict=True):
        if not r["tracks"]:
            continue
        expected = synthetic.compilation_tracks(sent["legacy_release_id"])
        assert [(t["artist_name"], t["track_title"], t["track_position"]) for t in r["tracks"]] \
            == [(t.artist_name, t.title, t.position) for t in expected]
        for t in r["tracks"]:
            assert set(t) == TRACK_KEYS
            if t["resolved_artist_name"] is None:
                failed += 1
                assert (t["method"], t["confidence"], t["sources"]) == (None, None, [])
                continue
            assert {s["source"] for s in t["sources"]} <= {"discogs", "musicbrainz"}
            for entry in t["sources"]:
                _check_entry(entry)
            assert t["confidence"] == min(s["confidence"] for s in t["sources"])
            assert canonical_name(t["resolved_artist_name"]) == canonical_name(t["artist_name"])
    assert failed > 0
    no_id = one(client, "Various Artists", include_tracks=True)
    assert (no_id["tracks_attempted"], no_id["tracks"]) == (False, [])
    no_tracks = one(client, "Various Artists", legacy=1_000_020)
    assert (no_tracks["tracks_attempted"], no_tracks["tracks"]) == (None, None)


def test_tracks_pair_for_single_artist_and_unresolved(client: httpx.Client) -> None:
    results = bulk(client, rows(40), include_tracks=True).json()["results"]
    for r in results:
        expected = (False, []) if r["kind"] == "single_artist" else (None, None)
        assert (r["tracks_attempted"], r["tracks"]) == expected


def test_verdicts_are_deterministic_across_servers_and_processes(client: httpx.Client) -> None:
    inputs = rows(300) + [row(5000 + i, "Various Artists", 1_000_000 + i) for i in range(20)]
    first = bulk(client, inputs, include_tracks=True).content
    with StandIn() as other, httpx.Client(base_url=other.url, headers=AUTH) as c2:
        assert bulk(c2, inputs, include_tracks=True).content == first
    script = ("import json, sys; from library_identity.demo.standin.verdicts import verdict; "
              "rows = json.load(sys.stdin); print(json.dumps([verdict(r['artist_name'], "
              "r['legacy_release_id'], True, library_id=r['library_id']) for r in rows], "
              "separators=(',', ':'), ensure_ascii=False))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], input=json.dumps(inputs), text=True,
                         capture_output=True, cwd=ROOT, env=env, check=True).stdout
    assert json.loads(out) == json.loads(first)["results"]


def test_drift_changes_about_a_tenth_of_known_artists(standin: StandIn,
                                                      client: httpx.Client) -> None:
    inputs = rows(1000)
    before = bulk(client, inputs).json()["results"]
    standin.config.drift = 3
    after = bulk(client, inputs).json()["results"]
    known = [(a, b) for a, b in zip(before, after, strict=True) if a["kind"] == "single_artist"]
    changed = sum(a != b for a, b in known) / len(known)
    assert 0.05 < changed < 0.15
    assert all(a == b for a, b in zip(before, after, strict=True) if a["kind"] != "single_artist"
               and b["kind"] != "single_artist")
    standin.config.drift = 0
    assert bulk(client, inputs).json()["results"] == before


# -- refresh-for-identities ---------------------------------------------------------------


def test_refresh_caps_and_validation(client: httpx.Client) -> None:
    assert len(client.post(REFRESH, json={"identity_ids": list(range(1, 51))})
               .json()["results"]) == 50
    over = client.post(REFRESH, json={"identity_ids": list(range(1, 52))})
    assert over.status_code == 400
    assert over.json() == {"message": "Batch exceeded the 50-item cap (received 51)."}
    for body in ({"identity_ids": []}, {}, {"identity_ids": ["1"]}, {"identity_ids": [1.5]},
                 {"identity_ids": [True]}, {"identity_ids": [None]}, {"identity_ids": 3}):
        response = client.post(REFRESH, json=body)
        assert response.status_code == 422, body
        assert response.json()["message"] == "Request failed"
    for raw in (b"{oops", b"[1]"):
        response = client.post(REFRESH, content=raw)
        assert response.status_code == 400
        assert response.json()["message"] == "Request failed"


def test_refresh_results(client: httpx.Client) -> None:
    ids = [7, 7, 3, 99]
    body = client.post(REFRESH, json={"identity_ids": ids}).json()
    assert set(body) == {"results"}
    assert [r["identity_id"] for r in body["results"]] == ids
    assert body["results"][0] == body["results"][1]
    seen: dict[str, int] = {}
    for start in range(1, 4001, 50):
        batch = list(range(start, start + 50))
        for r in client.post(REFRESH, json={"identity_ids": batch}).json()["results"]:
            seen[r["status"]] = seen.get(r["status"], 0) + 1
            assert set(r) == {"identity_id", "status", "sources", "message"}
            sources = r["sources"]
            if r["status"] == "not_found":
                assert sources is None
                continue
            if sources is None:
                assert r["status"] == "error" and r["message"][0].isupper()
                continue
            for key, leg in sources.items():
                assert set(leg) == {"release_outcome", "artists", "message"}
                if key != "discogs_release":
                    assert leg["release_outcome"] == "not_implemented"
                for artist in leg["artists"]:
                    assert artist["outcome"] in ("success", "error")
                    assert artist["external_id"].isdigit()
            outcomes = {leg["release_outcome"] for leg in sources.values()}
            expected = ("warmed" if "success" in outcomes else
                        "not_implemented" if "not_implemented" in outcomes or not sources
                        else "error")
            assert r["status"] == expected
    assert set(seen) == {"warmed", "not_found", "not_implemented", "error"}
    assert seen["warmed"] / sum(seen.values()) > 0.9


def test_refresh_disabled_is_404_and_probe_is_422(standin: StandIn,
                                                  client: httpx.Client) -> None:
    assert client.post(REFRESH, json={"identity_ids": []}).status_code == 422
    standin.config.refresh_enabled = False
    assert client.post(REFRESH, json={"identity_ids": []}).status_code == 404
    assert httpx.post(f"{standin.url}{REFRESH}", json={"identity_ids": [1]}).status_code == 404
    assert client.post(BULK, json={"inputs": rows(1)}).status_code == 200


# -- identity/resolve ---------------------------------------------------------------------


def test_resolve_is_idempotent_and_mints_once(client: httpx.Client) -> None:
    request = {"kind": "release", "source": "discogs_release", "external_id": "424242"}
    first = client.post(RESOLVE, json=request).json()
    second = client.post(RESOLVE, json=request).json()
    assert first["minted"] is True and second["minted"] is False
    assert first["identity_id"] == second["identity_id"] and first["kind"] == "release"
    assert isinstance(first["identity_id"], int) and 0 < first["identity_id"] < 2**31
    master = client.post(RESOLVE, json={**request, "source": "discogs_master"}).json()
    assert master["identity_id"] != first["identity_id"]
    with StandIn() as other:
        again = httpx.post(f"{other.url}{RESOLVE}", json=request, headers=AUTH).json()
    assert again == first  # same id from a fresh process, minted there for the first time
    ok = {"kind": "release", "source": "bandcamp",
          "external_id": "https://band.bandcamp.com/album/first-light"}
    assert client.post(RESOLVE, json=ok).status_code == 200
    apple = {"kind": "release", "source": "apple_music_album", "external_id": "1440857781"}
    assert client.post(RESOLVE, json=apple).status_code == 200


@pytest.mark.parametrize("body", [
    {"kind": "artist", "source": "discogs_release", "external_id": "1"},
    {"kind": "release", "source": "spotify_album", "external_id": "1"},
    {"kind": "release", "source": "discogs_release", "external_id": "0"},
    {"kind": "release", "source": "discogs_release", "external_id": "-4"},
    {"kind": "release", "source": "discogs_master", "external_id": "abc"},
    {"kind": "release", "source": "discogs_release", "external_id": 12},
    {"kind": "release", "source": "discogs_release"},
    {"kind": "release", "source": "bandcamp", "external_id": "https://band.bandcamp.com/track/x"},
    {"kind": "release", "source": "bandcamp", "external_id": "https://band.bandcamp.com"},
    {"kind": "release", "source": "apple_music_album", "external_id": "0"},
    ["release"],
])
def test_resolve_rejects_with_422(client: httpx.Client, body: Any) -> None:
    response = client.post(RESOLVE, json=body)
    assert response.status_code == 422
    assert response.json()["message"] == "Request validation failed"


# -- faults -------------------------------------------------------------------------------


def test_injected_errors_and_retry_after(standin: StandIn, client: httpx.Client) -> None:
    standin.config.error_rate = 1.0
    for path, body in ((BULK, {"inputs": rows(2)}), (REFRESH, {"identity_ids": [1]}),
                       (RESOLVE, {"kind": "release", "source": "discogs_release",
                                  "external_id": "5"})):
        response = client.post(path, json=body)
        assert response.status_code == 503 and "message" in response.json()
        assert "retry-after" not in response.headers
    standin.config.retry_after = 2
    assert client.post(BULK, json={"inputs": rows(2)}).headers["retry-after"] == "2"
    standin.config.error_status = 429
    response = client.post(BULK, json={"inputs": rows(2)})
    assert (response.status_code, response.headers["retry-after"]) == (429, "2")
    standin.config.error_status = 502
    response = client.post(BULK, json={"inputs": rows(2)})
    assert response.status_code == 502 and "retry-after" not in response.headers
    # Invalid requests stay permanent errors: validation comes before injected faults.
    assert client.post(BULK, json={"inputs": []}).status_code == 422


def test_fail_first(standin: StandIn, client: httpx.Client) -> None:
    standin.config = StandInConfig(fail_first=2, error_status=500)
    statuses = [bulk(client, rows(1)).status_code for _ in range(4)]
    assert statuses == [500, 500, 200, 200]
    standin.config = StandInConfig(fail_first=1)
    assert [bulk(client, rows(1)).status_code for _ in range(2)] == [503, 200]


def test_error_rate_is_deterministic_given_seed() -> None:
    def sequence() -> list[int]:
        with StandIn(StandInConfig(error_rate=0.5, seed=9)) as s, \
                httpx.Client(base_url=s.url, headers=AUTH) as c:
            return [bulk(c, rows(1)).status_code for _ in range(24)]
    first = sequence()
    assert first == sequence()
    assert {200, 503} == set(first)


def test_timeout_and_latency(standin: StandIn) -> None:
    standin.config.timeout_rate = 1.0
    standin.config.hang_seconds = 1.0
    with httpx.Client(base_url=standin.url, headers=AUTH, timeout=0.2) as c, \
            pytest.raises(httpx.ReadTimeout):
        bulk(c, rows(1))
    standin.config = StandInConfig(latency_ms=150)
    with httpx.Client(base_url=standin.url, headers=AUTH) as c:
        started = time.monotonic()
        assert bulk(c, rows(1)).status_code == 200
        assert time.monotonic() - started >= 0.15


def _ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200
    return [r["library_id"] for r in response.json()["results"]]


def test_short_foreign_and_duplicate_responses(standin: StandIn, client: httpx.Client) -> None:
    inputs = rows(10)
    sent = [r["library_id"] for r in inputs]
    standin.config.short_rate = 1.0
    assert _ids(bulk(client, inputs)) == sent[:-1]
    standin.config = StandInConfig(foreign_id_rate=1.0)
    ids = _ids(bulk(client, inputs))
    assert len(ids) == 10 and len(set(ids) - set(sent)) == 1
    standin.config = StandInConfig(duplicate_id_rate=1.0)
    ids = _ids(bulk(client, inputs))
    assert len(ids) == 10 and len(set(ids)) == 9 and set(ids) <= set(sent)


def test_malformed_and_bad_enum_responses(standin: StandIn, client: httpx.Client) -> None:
    standin.config.malformed_rate = 1.0
    for _ in range(6):
        response = bulk(client, rows(5))
        assert response.status_code == 200
        with pytest.raises(ValueError):
            json.loads(response.content)
    response = client.post(REFRESH, json={"identity_ids": [1, 2]})
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.content)
    standin.config = StandInConfig(bad_enum_rate=1.0)
    kinds = {"single_artist", "compilation", "unresolved"}
    for _ in range(6):
        results = bulk(client, rows(5)).json()["results"]
        bad = [r for r in results if r["kind"] not in kinds or (r["confidence"] or 0) > 1]
        assert len(bad) == 1


def test_cache_stats_switch(standin: StandIn, client: httpx.Client) -> None:
    assert bulk(client, rows(5)).json()["cache_stats"] is None
    standin.config.cache_stats = True
    stats = bulk(client, rows(5)).json()["cache_stats"]
    assert set(stats) == {"memory_hits", "pg_hits", "pg_misses", "api_calls", "pg_time_ms",
                          "api_time_ms"}
    assert all(value >= 0 for value in stats.values())
    assert all(isinstance(stats[k], int) for k in ("memory_hits", "pg_hits", "pg_misses",
                                                    "api_calls"))


# -- transport and lifecycle --------------------------------------------------------------


def test_request_log(standin: StandIn, client: httpx.Client) -> None:
    bulk(client, rows(7))
    client.post(REFRESH, json={"identity_ids": list(range(60))})
    httpx.get(f"{standin.url}/health")
    records = standin.requests
    assert [(r.method, r.path, r.status, r.batch_size, r.authorized) for r in records] == [
        ("POST", BULK, 200, 7, True), ("POST", REFRESH, 400, 60, True),
        ("GET", "/health", 200, None, True)]
    assert records[0].time <= records[1].time <= records[2].time <= time.monotonic()
    standin.clear_log()
    assert standin.requests == []


def test_keep_alive_serves_several_requests_on_one_socket(standin: StandIn) -> None:
    body = json.dumps({"inputs": rows(3)}).encode()
    request = (f"POST {BULK} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    with socket.create_connection((standin.host, standin.port), timeout=5) as sock:
        reader = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(request)
            assert reader.readline().startswith(b"HTTP/1.1 200")
            headers = {}
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            assert "close" not in headers.get("connection", "")
            payload = reader.read(int(headers["content-length"]))
            assert len(json.loads(payload)["results"]) == 3


def test_a_full_batch_is_fast(client: httpx.Client) -> None:
    inputs = rows(1000, start=90_000)
    started = time.perf_counter()
    assert len(bulk(client, inputs).json()["results"]) == 1000
    assert time.perf_counter() - started < 0.5


def test_stop_closes_the_server() -> None:
    standin = StandIn().start()
    with httpx.Client(base_url=standin.url, headers=AUTH) as c:
        assert bulk(c, rows(1)).status_code == 200
        standin.stop()
        with pytest.raises(httpx.TransportError):
            bulk(c, rows(1))


def test_serve_prints_the_url_and_stops_on_sigterm() -> None:
    script = ("from library_identity.demo.standin import StandInConfig, serve; "
              "serve(StandInConfig(api_key=None), '127.0.0.1', 0)")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split()[line.split().index("on") + 1]
        assert url.startswith("http://127.0.0.1:")
        assert httpx.post(f"{url}{BULK}", json={"inputs": rows(2)}).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
