"""The station tables and columns the project reads or writes, with the types it can use.

`doctor` and the jobs' preflight compare this with the database (information_schema), so
a station schema that drifted is named before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from library_identity.db import STATION_SCHEMA

# Type families (pg_type.typname) the project's SQL works with. The catalogue, not
# information_schema: that hides the columns a role has no privilege on.
INTEGER = ("int4", "int8", "int2")
TEXT = ("text", "varchar", "bpchar")
TIMESTAMPTZ = ("timestamptz",)
REAL = ("float4", "float8")
UUID = ("uuid",)
DATE = ("date",)
BOOLEAN = ("bool",)
ENUM = ("enum",)  # any enum type (pg_type.typtype 'e'), read as text

# The one use of the on-air log: only this needs it, so no other command checks for it.
ON_AIR_LOG_USE = ("only `rotation backfill`'s quiet period reads it; --quiet-lookback 0 "
                  "runs without it")

_IDENTITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "discogs_master_id": INTEGER, "discogs_release_id": INTEGER,
    "musicbrainz_release_group_mbid": UUID, "musicbrainz_release_mbid": UUID,
    "musicbrainz_recording_mbid": UUID, "wikidata_qid": TEXT, "spotify_id": TEXT,
    "apple_music_id": TEXT, "last_verified_at": TIMESTAMPTZ, "method": TEXT,
    "confidence": REAL, "agreement_sources": TEXT, "notes": TEXT,
}


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, tuple[str, ...]]
    # Columns an older station database may lack; the project then reads NULL.
    optional: tuple[str, ...] = ()
    # Set for a table only one use needs: the other commands run without it.
    needed_for: str | None = None

    @property
    def qualified(self) -> str:
        return f"{STATION_SCHEMA}.{self.name}"


TABLES: tuple[Table, ...] = (
    Table("library", {
        "id": INTEGER, "artist_id": INTEGER, "artist_name": TEXT, "album_title": TEXT,
        "legacy_release_id": INTEGER, "code_volume_letters": TEXT,
        "canonical_entity_id": TEXT, "unresolved_attempted_at": TIMESTAMPTZ,
    }, optional=("unresolved_attempted_at",)),
    Table("artists", {"id": INTEGER, "artist_name": TEXT, "code_letters": TEXT}),
    Table("compilation_track_artist", {
        "id": INTEGER, "library_id": INTEGER, "artist_name": TEXT, "track_title": TEXT,
        "track_position": TEXT, "track_artist_id": INTEGER,
        "track_artist_link_confidence": REAL, "track_artist_link_method": TEXT,
    }),
    Table("rotation", {
        "id": INTEGER, "album_id": INTEGER, "rotation_bin": ENUM, "add_date": DATE,
        "kill_date": DATE, "discogs_release_id": INTEGER, "lml_identity_id": INTEGER,
    }),
    Table("flowsheet", {"id": INTEGER, "entry_type": ENUM, "add_time": TIMESTAMPTZ},
          needed_for=ON_AIR_LOG_USE),
    Table("library_identity", {"library_id": INTEGER, **_IDENTITY_COLUMNS}),
    Table("library_identity_source", {
        "library_id": INTEGER, "source": TEXT, "external_id": TEXT, "method": TEXT,
        "confidence": REAL, "last_verified_at": TIMESTAMPTZ, "boost_sources": TEXT,
        "notes": TEXT,
    }),
    Table("library_identity_history", {
        "history_id": INTEGER, "library_id": INTEGER, **_IDENTITY_COLUMNS,
        "superseded_at": TIMESTAMPTZ, "superseded_reason": TEXT, "reason_category": TEXT,
        "archived_at": TIMESTAMPTZ,
    }),
    Table("library_watermark", {"id": BOOLEAN, "last_modified_at": TIMESTAMPTZ}),
)
