"""The shapes LML promises (API 1.33.0, with its live deviations), as pydantic models.

Models are strict where a wrong value would land bad data (kinds, sources, methods,
confidence: a JSON number in 0..1, never a boolean or a string, the same rule dbt's
staging models apply, except a per-track credit's, which the merge stores as NULL; ids
JSON integers within the columns that hold them) and lenient where LML is known to deviate (explicit
nulls, cache_stats: null, unknown extra keys).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from typing_extensions import TypedDict

IdentitySource = Literal["discogs", "musicbrainz", "wikidata", "spotify", "apple_music",
                         "bandcamp"]
IdentityMethod = Literal["manual", "cross_source_agreement", "exact_match", "name_variation",
                         "member_group", "alias_match", "trigram", "llm"]
ResultKind = Literal["single_artist", "compilation", "unresolved"]
# The same vocabularies as tuples, for checks that do not go through pydantic.
IDENTITY_SOURCES: tuple[str, ...] = get_args(IdentitySource)
IDENTITY_METHODS: tuple[str, ...] = get_args(IdentityMethod)
RESULT_KINDS: tuple[str, ...] = get_args(ResultKind)
# A JSON number in 0..1: `true` or "0.95" is invalid, not coerced.
Confidence = Annotated[StrictFloat, Field(ge=0, le=1)]
BIGINT_MAX = 2**63 - 1
INTEGER_MAX = 2**31 - 1


def is_confidence(value: Any) -> bool:
    """A JSON number in 0..1, never a boolean, compared exactly however large or small:
    the rule the SQL that reads the log applies too (macros/verdict_entries.sql,
    entry_number)."""
    t = type(value)
    return (t is float or t is int) and 0 <= value <= 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ReconciledIdentity(_Model):
    discogs_artist_id: Annotated[int, Field(ge=-BIGINT_MAX - 1, le=BIGINT_MAX)] | None = None
    musicbrainz_artist_id: str | None = None
    wikidata_qid: str | None = None
    spotify_artist_id: str | None = None
    apple_music_artist_id: str | None = None
    bandcamp_id: str | None = None


class ProvenanceEntry(TypedDict):
    """A provenance entry (album level, and per track). TypedDicts rather than models for
    these many small objects: validating into plain dicts is two to three times faster."""

    source: IdentitySource
    method: IdentityMethod
    confidence: NotRequired[Confidence | None]
    external_id: NotRequired[str | None]


class TrackIdentity(TypedDict):
    """A per-track entry (a TypedDict like ProvenanceEntry: a compilation carries dozens;
    the loader only counts them, dbt reads them from the landed JSON)."""

    track_position: NotRequired[str | None]
    artist_name: Annotated[str, Field(min_length=1)]
    track_title: NotRequired[str | None]
    resolved_artist_name: NotRequired[str | None]
    # Not bounded here: one credit outside 0..1 must not cost the whole compilation. The
    # loader logs it and the merge stores that credit's confidence as NULL.
    confidence: NotRequired[float | None]
    method: NotRequired[IdentityMethod | None]
    sources: NotRequired[list[ProvenanceEntry] | None]


class BulkResolveResult(_Model):
    kind: ResultKind
    library_id: int
    main: ReconciledIdentity | None = None
    method: IdentityMethod | None = None
    confidence: Confidence | None = None
    provenance: list[ProvenanceEntry] = Field(default_factory=list)
    tracks_attempted: bool | None = None
    tracks: list[TrackIdentity] | None = None


class CacheStats(_Model):
    memory_hits: int = Field(ge=0)
    pg_hits: int = Field(ge=0)
    pg_misses: int = Field(ge=0)
    api_calls: int = Field(ge=0)
    pg_time_ms: float = Field(ge=0)
    api_time_ms: float = Field(ge=0)


class CacheRefreshArtistOutcome(_Model):
    external_id: str
    outcome: str
    message: str | None = None


class CacheRefreshSourceResult(_Model):
    release_outcome: str
    artists: list[CacheRefreshArtistOutcome] = Field(default_factory=list)
    message: str | None = None


class CacheRefreshResultItem(_Model):
    # Matched against the ids sent and landed as the answer for that id: `true`, "7" or
    # 7.0 is no identity id.
    identity_id: StrictInt
    status: str
    sources: dict[str, CacheRefreshSourceResult | None] | None = None
    message: str | None = None


class ReleaseIdentityResolveResponse(_Model):
    # Lands in the station's rotation.lml_identity_id, an integer column: a JSON integer
    # in its range, never `true`, "7" or 7.0 coerced into one.
    identity_id: Annotated[StrictInt, Field(ge=1, le=INTEGER_MAX)]
    kind: str
    minted: StrictBool
