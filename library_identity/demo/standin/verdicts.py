"""The stand-in's "knowledge": deterministic bulk-resolve verdicts.

Every verdict is a pure function of (artist_name, legacy_release_id, include_tracks) and the
`drift` knob, built from `synthetic.stable_hash`, so the same library row gets the same answer
in every run and every process, and the stand-in can answer for a library it has never seen.

Composition follows LML: V/A by name only, lookup by canonical form, one row per source with
an optional reconciliation log entry, a 0.70 floor, cross-source agreement when two or more
non-inherited rows survive, otherwise the weakest row with source-priority tie-break.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from library_identity.demo.synthetic import compilation_tracks, fold, is_va_name, stable_hash

SOURCES = ("discogs", "musicbrainz", "wikidata", "spotify", "apple_music", "bandcamp")
MAIN_KEYS = {
    "discogs": "discogs_artist_id",
    "musicbrainz": "musicbrainz_artist_id",
    "wikidata": "wikidata_qid",
    "spotify": "spotify_artist_id",
    "apple_music": "apple_music_artist_id",
    "bandcamp": "bandcamp_id",
}
# The confidence band LML gives each IdentityMethod (inclusive).
METHOD_BANDS: dict[str, tuple[float, float]] = {
    "manual": (1.0, 1.0),
    "cross_source_agreement": (0.95, 1.0),
    "exact_match": (1.0, 1.0),
    "name_variation": (0.90, 0.99),
    "member_group": (0.80, 0.89),
    "alias_match": (0.75, 0.84),
    "trigram": (0.70, 1.0),
    "llm": (0.60, 0.79),
}
FLOOR = 0.70

# Share of names LML holds an identity for, and how often each source holds an id.
KNOWN_PERMILLE = 800
_SOURCE_PERMILLE = {
    "discogs": 900, "musicbrainz": 700, "wikidata": 500,
    "spotify": 450, "apple_music": 300, "bandcamp": 150,
}
# Share of known artists that are pure legacy data (no log entries: exact_match / 1.0), and,
# for the others, how often a source row carries a reconciliation log entry.
_LEGACY_PERCENT = 55
_LOGGED_PERCENT = 75
# Log-entry methods as (method, weight, low, high). Ranges may reach below the floor on
# purpose: those rows are dropped, as LML drops them. "inherited" maps to exact_match
# (inherited); an unknown method string is dropped; a null confidence counts as 0.0.
_LOG_METHODS: tuple[tuple[str | None, int, float, float], ...] = (
    ("exact_match", 30, 1.0, 1.0),
    ("name_variation", 20, 0.90, 0.99),
    ("alias_match", 10, 0.75, 0.84),
    ("member_group", 7, 0.80, 0.89),
    ("trigram", 12, 0.55, 0.94),
    ("llm", 10, 0.60, 0.79),
    ("manual", 3, 1.0, 1.0),
    ("inherited", 3, 1.0, 1.0),
    ("fuzzy_v0", 2, 0.90, 0.99),  # a method LML does not recognise
    (None, 3, 0.0, 0.0),  # log entry whose confidence is null
)
_LOG_TOTAL = sum(w for _, w, _, _ in _LOG_METHODS)
# Per-track legs only ever come from discogs and musicbrainz.
_TRACK_METHODS: tuple[tuple[str, int, float, float], ...] = (
    ("exact_match", 60, 1.0, 1.0),
    ("name_variation", 20, 0.90, 0.99),
    ("alias_match", 8, 0.75, 0.84),
    ("trigram", 7, 0.70, 0.94),
    ("member_group", 5, 0.80, 0.89),
)
_TRACK_TOTAL = sum(w for _, w, _, _ in _TRACK_METHODS)
_PRIORITY = {source: rank for rank, source in enumerate(SOURCES)}

_CURLY = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u201b": "'"})
_AMP = re.compile(r"(?<=\s)&(?=\s)")
_TRAILING_PAREN = re.compile(r"\s*\([^()]*\)\s*$")
_ARTICLE = re.compile(r"^(?:the|a|an)\s+")
_SPACE = re.compile(r"\s+")
_EIGHT_WORDS = struct.Struct(">8Q")
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def canonical_name(name: str) -> str:
    """LML's canonical form, its steps in LML's order."""
    text = _AMP.sub("and", name.translate(_CURLY))
    text = fold(unicodedata.normalize("NFKC", text))  # lowercase + strip diacritics
    text = _SPACE.sub(" ", text).strip()
    stripped = _TRAILING_PAREN.sub("", text)
    text = stripped or text  # a name that is only a parenthetical keeps it
    without_article = _ARTICLE.sub("", text)
    return without_article or text


def _pick(table: tuple[tuple[Any, int, float, float], ...], total: int, h: int
          ) -> tuple[Any, float]:
    """Pick a (method, confidence) from a weighted table using the bits of h."""
    roll = h % total
    for method, weight, low, high in table:
        if roll < weight:
            spread = ((h >> 20) % 10_000) / 9_999
            return method, round(low + (high - low) * spread, 3)
        roll -= weight
    raise AssertionError("weights exhausted")


def _words(*parts: object) -> tuple[int, ...]:
    """Eight independent 64-bit words from one hash: one digest feeds a whole artist."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=64)
    return _EIGHT_WORDS.unpack(digest.digest())


def _external_ids(canon: str, salt: int) -> dict[str, str | int]:
    """Realistic-looking ids for this artist at every source, derived from one hash."""
    w = _words("lml-ids", canon, salt)
    spotify, chars = (w[4] << 128) | (w[5] << 64) | w[6], []
    for _ in range(22):
        spotify, digit = divmod(spotify, 62)
        chars.append(_B62[digit])
    slug = re.sub(r"[^a-z0-9]", "", canon)[:40]
    return {
        "discogs": 1 + w[0] % 9_000_000,
        "musicbrainz": str(uuid.UUID(int=(w[1] << 64) | w[2], version=4)),
        "wikidata": f"Q{1 + w[3] % 120_000_000}",
        "spotify": "".join(chars),
        "apple_music": str(100_000_000 + w[7] % 1_800_000_000),
        "bandcamp": slug or f"artist{w[0] % 10_000_000}",
    }


@dataclass(frozen=True)
class ArtistVerdict:
    """The artist-level part of a result, shared by every row with the same canonical name."""

    kind: str
    main: dict[str, Any] | None
    method: str | None
    confidence: float | None
    provenance: list[dict[str, Any]]


UNRESOLVED = ArtistVerdict("unresolved", None, None, None, [])


@lru_cache(maxsize=16_384)
def artist_verdict(canon: str, drift: int = 0) -> ArtistVerdict:
    """Compose the verdict for one canonical name."""
    if not canon or stable_hash("lml-known", canon) % 1000 >= KNOWN_PERMILLE:
        return UNRESOLVED
    # Drift re-draws ~10% of known artists' rows and ids, as a re-reconciliation would.
    salt = drift if drift and stable_hash("lml-drift", drift, canon) % 100 < 10 else 0
    words = _words("lml-plan", canon, salt)  # words[0]: artist plan, words[1:7]: one per source
    plan = words[0]
    legacy = plan % 100 < _LEGACY_PERCENT
    rows: list[tuple[str, str, float, bool]] = []  # (source, method, confidence, inherited)
    held: list[str] = []
    for source, h in zip(SOURCES, words[1:7], strict=True):
        if h % 1000 >= _SOURCE_PERMILLE[source]:
            continue
        held.append(source)
        if legacy or (h >> 10) % 100 >= _LOGGED_PERCENT:
            rows.append((source, "exact_match", 1.0, True))
            continue
        method, confidence = _pick(_LOG_METHODS, _LOG_TOTAL, h >> 17)
        if method == "inherited":
            rows.append((source, "exact_match", 1.0, True))
        elif method in METHOD_BANDS:
            rows.append((source, method, confidence, False))
        elif method is None:
            rows.append((source, "exact_match", 0.0, False))
        # else: an unknown method string, dropped like LML drops it
    if not held:  # every identity row holds at least one id
        rows.append(("discogs", "exact_match", 1.0, True))
        held.append("discogs")
    survivors = [row for row in rows if row[2] >= FLOOR]
    if not survivors:
        return UNRESOLVED
    if sum(1 for row in survivors if not row[3]) >= 2:
        method = "cross_source_agreement"
        confidence = max(0.95, min(row[2] for row in survivors))
    else:
        weakest = min(survivors, key=lambda row: (row[2], _PRIORITY[row[0]]))
        method, confidence = weakest[1], weakest[2]
    main: dict[str, Any] = dict.fromkeys(MAIN_KEYS.values())
    provenance: list[dict[str, Any]] = []
    ids = _external_ids(canon, salt)
    for source, row_method, row_confidence, _ in survivors:
        ext = ids[source]
        main[MAIN_KEYS[source]] = ext
        provenance.append({"source": source, "method": row_method,
                           "confidence": row_confidence, "external_id": str(ext)})
    # ~2%: a leg ran and found nothing; exercises the consumer's "skip null external_id" path.
    missing = [s for s in SOURCES if s not in held]
    if missing and (plan >> 8) % 100 < 2:
        provenance.append({"source": missing[(plan >> 16) % len(missing)],
                           "method": "trigram", "confidence": None, "external_id": None})
    return ArtistVerdict("single_artist", main, method, confidence, provenance)


@lru_cache(maxsize=32_768)
def _named_verdict(artist_name: str, drift: int) -> ArtistVerdict:
    """Library rows repeat artist names; skip canonicalising a name seen recently."""
    return artist_verdict(canonical_name(artist_name), drift)


def _variant(credit: str, h: int) -> str:
    """A diacritic-free or differently-cased spelling of a credit, as a canonical record has."""
    stripped = unicodedata.normalize("NFC", "".join(
        ch for ch in unicodedata.normalize("NFD", credit) if not unicodedata.combining(ch)))
    options = [stripped] if stripped != credit else []
    options += [v for v in (credit.title(), credit.lower(), credit.upper()) if v != credit]
    return options[h % len(options)] if options else credit


@lru_cache(maxsize=8_192)
def track_identity(credit: str) -> tuple[str | None, str | None, float | None,
                                          tuple[dict[str, Any], ...]]:
    """(resolved_artist_name, method, confidence, sources) for one compilation credit."""
    canon = canonical_name(credit)
    h = stable_hash("lml-track-credit", canon)
    if h % 100 < 8 or not canon:
        return None, None, None, ()  # the matcher tried and failed
    legs: list[tuple[str, str, float]] = []
    for source, permille in (("discogs", 850), ("musicbrainz", 600)):
        lh = stable_hash("lml-track-leg", source, canon)
        if lh % 1000 < permille:
            legs.append((source, *_pick(_TRACK_METHODS, _TRACK_TOTAL, lh >> 10)))
    if not legs:  # a resolved credit has at least one leg
        legs.append(("discogs", "exact_match", 1.0))
    weakest = min(legs, key=lambda leg: (leg[2], _PRIORITY[leg[0]]))
    ids = _external_ids(canon, 0)  # the same ids the artist has at album level
    sources = tuple(
        {"source": source, "method": method, "confidence": confidence,
         "external_id": str(ids[source])}
        for source, method, confidence in legs
    )
    resolved = _variant(credit, h >> 12) if (h >> 8) % 100 < 8 else credit
    return resolved, weakest[1], weakest[2], sources


@lru_cache(maxsize=1_024)
def compilation_track_data(legacy_release_id: int) -> tuple[bool, list[dict[str, Any]]]:
    """(tracks_attempted, tracks) for a compilation, shared read-only across results."""
    roll = stable_hash("lml-tracks", legacy_release_id) % 100
    if roll < 10:
        return False, []  # the per-track matcher has not visited this release yet
    if roll < 15:
        return True, []  # it ran and resolved nothing
    entries = []
    for track in compilation_tracks(legacy_release_id):
        resolved, method, confidence, sources = track_identity(track.artist_name)
        entries.append({
            "track_position": track.position,
            "artist_name": track.artist_name,
            "track_title": track.title,
            "resolved_artist_name": resolved,
            "confidence": confidence,
            "method": method,
            "sources": list(sources),
        })
    return True, entries


def verdict(artist_name: str, legacy_release_id: int | None, include_tracks: bool, *,
            library_id: int = 0, drift: int = 0) -> dict[str, Any]:
    """One BulkResolveResult with every key present (explicit nulls).

    Nested objects are shared between results and must be treated as read-only.
    """
    attempted: bool | None = None
    tracks: list[dict[str, Any]] | None = None
    if is_va_name(artist_name):
        if include_tracks:
            attempted, tracks = (compilation_track_data(legacy_release_id)
                                 if legacy_release_id is not None else (False, []))
        return {"kind": "compilation", "library_id": library_id, "main": None, "method": None,
                "confidence": None, "provenance": [], "tracks_attempted": attempted,
                "tracks": tracks}
    found = _named_verdict(artist_name, drift)
    if include_tracks and found.kind == "single_artist":
        # Single-artist per-track data needs a release mapping the stand-in does not model.
        attempted, tracks = False, []
    return {"kind": found.kind, "library_id": library_id, "main": found.main,
            "method": found.method, "confidence": found.confidence,
            "provenance": found.provenance, "tracks_attempted": attempted, "tracks": tracks}


def cache_stats(results: list[dict[str, Any]]) -> dict[str, Any]:
    """A plausible CacheStats for a batch: hits for known names, misses for the rest."""
    hits = sum(1 for r in results if r["kind"] == "single_artist")
    memory = sum(1 for r in results if r["kind"] == "compilation")
    misses = len(results) - hits - memory
    return {"memory_hits": memory, "pg_hits": hits, "pg_misses": misses, "api_calls": 0,
            "pg_time_ms": round(0.35 * (hits + misses), 3), "api_time_ms": 0.0}
