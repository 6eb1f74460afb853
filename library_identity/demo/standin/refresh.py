"""Refresh-for-identities outcomes and release-identity minting for the stand-in.

Outcomes are a pure function of the identity id, so a rerun sees the same statuses; minted
ids are a pure function of (source, external_id), so every stand-in process agrees on them.
"""

from __future__ import annotations

import re
from typing import Any

from library_identity.demo.synthetic import release_identity_id, stable_hash

REFRESH_CAP = 50
RELEASE_SOURCES = ("discogs_release", "discogs_master", "bandcamp", "apple_music_album")
# Keys an identity may carry in `sources`; only discogs_release is wired in LML.
_UNWIRED = ("discogs_master", "musicbrainz_release", "spotify_album", "apple_music_album",
            "bandcamp")
_ITEM_EXCEPTIONS = ("OperationalError", "TimeoutError", "KeyError", "InterfaceError")
_LEG_EXCEPTIONS = ("DiscogsBreakerOpenError", "HTTPStatusError", "ReadTimeout")

_BANDCAMP_ALBUM = re.compile(r"^https://[a-z0-9][a-z0-9-]*\.bandcamp\.com/album/[a-z0-9-]+/?$")
_POSITIVE = re.compile(r"^[0-9]+$")


def _not_implemented(message: str | None = None) -> dict[str, Any]:
    return {"release_outcome": "not_implemented", "artists": [], "message": message}


def forgotten(identity_id: int) -> bool:
    """LML no longer knows this identity (about 0.5% of ids): a refresh answers not_found,
    and resolving its release again mints another (identity_id_for)."""
    return stable_hash("lml-refresh", identity_id) % 1000 < 5


def refresh_item(identity_id: int) -> dict[str, Any]:
    """One CacheRefreshResultItem: ~0.5% not_found, ~1% error, ~2% not_implemented, rest warmed."""
    h = stable_hash("lml-refresh", identity_id)
    roll = h % 1000
    if forgotten(identity_id):
        return {"identity_id": identity_id, "status": "not_found", "sources": None,
                "message": None}
    if roll < 10:  # the item raised unexpectedly: no sources, the exception class only
        return {"identity_id": identity_id, "status": "error", "sources": None,
                "message": _ITEM_EXCEPTIONS[(h >> 12) % len(_ITEM_EXCEPTIONS)]}
    sources: dict[str, Any] = {}
    extra = _UNWIRED[(h >> 12) % len(_UNWIRED)]
    if roll < 15:  # every leg LML tried failed
        sources["discogs_release"] = {
            "release_outcome": "error", "artists": [],
            "message": _LEG_EXCEPTIONS[(h >> 16) % len(_LEG_EXCEPTIONS)]}
        return {"identity_id": identity_id, "status": "error", "sources": sources,
                "message": None}
    if roll < 35:  # no wired source, or no source at all
        if roll % 4:
            sources[extra] = _not_implemented()
        if roll % 5 == 0:
            sources["tidal_album"] = _not_implemented("unknown source: 'tidal_album'")
        return {"identity_id": identity_id, "status": "not_implemented", "sources": sources,
                "message": None}
    artists = []
    if (h >> 20) % 100 >= 3:  # else a tombstone: Discogs said 404, no artist walk
        for n in range(1 + (h >> 24) % 4):
            ah = stable_hash("lml-refresh-artist", identity_id, n)
            failed = ah % 100 < 3  # artist-walk failures never demote "warmed"
            artists.append({
                "external_id": str(1 + ah % 9_000_000),
                "outcome": "error" if failed else "success",
                "message": _LEG_EXCEPTIONS[(ah >> 8) % 2] if failed else None,
            })
    sources["discogs_release"] = {"release_outcome": "success", "artists": artists,
                                  "message": None}
    if (h >> 30) % 3 == 0:
        sources[extra] = _not_implemented()
    return {"identity_id": identity_id, "status": "warmed", "sources": sources, "message": None}


def resolve_errors(body: Any) -> list[dict[str, Any]]:
    """Validation errors for a ReleaseIdentityResolveRequest; empty when it is valid."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid object", "type": "model_type"}]
    errors = []
    for field in ("kind", "source", "external_id"):
        if field not in body:
            errors.append({"loc": ["body", field], "msg": "Field required", "type": "missing"})
        elif not isinstance(body[field], str):
            errors.append({"loc": ["body", field], "msg": "Input should be a valid string",
                           "type": "string_type"})
    if errors:
        return errors
    if body["kind"] != "release":
        errors.append({"loc": ["body", "kind"], "msg": "Input should be 'release'",
                       "type": "enum"})
    source, external_id = body["source"], body["external_id"]
    if source not in RELEASE_SOURCES:
        errors.append({"loc": ["body", "source"], "type": "enum",
                       "msg": "Input should be " + ", ".join(map(repr, RELEASE_SOURCES))})
    elif source == "bandcamp":
        if not _BANDCAMP_ALBUM.match(external_id):
            errors.append({"loc": ["body", "external_id"], "type": "value_error",
                           "msg": "bandcamp external_id must be a canonical album URL"})
    elif not _POSITIVE.match(external_id) or int(external_id) <= 0:
        errors.append({"loc": ["body", "external_id"], "type": "value_error",
                       "msg": f"{source} external_id must be a positive integer string"})
    return errors


def identity_key(source: str, external_id: str) -> tuple[str, str]:
    """The identity a (source, external_id) pair names: numeric ids compare as numbers."""
    if source == "bandcamp":
        return source, external_id.rstrip("/")
    return source, str(int(external_id))


def identity_id_for(key: tuple[str, str]) -> int:
    """A stable, positive 31-bit identity id for a resolved release identity: the one the
    sample rotation stores, unless LML has forgotten that one; then a re-minted id."""
    identity_id, again = release_identity_id(*key), 0
    while forgotten(identity_id):
        again += 1
        identity_id = 1 + stable_hash("lml-release-identity", *key, "reminted", again) \
            % 2_000_000_000
    return identity_id
