"""A deterministic synthetic station library shaped like the real one.

Every value is a pure function of the requested row count: names and track lists come from
`library_identity.demo.synthetic`, choices from `synthetic.fraction`/`stable_hash`, and
timestamps from a fixed reference date. Ids are written explicitly (and the sequences set
afterwards), so the same `rows` gives byte-identical tables whatever state the sequences were in.

Proportions follow the station's own library at the default 64,676 rows (its size, V/A
share, compilation credits and active rotation) and scale with `rows`.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from library_identity import dbt_names
from library_identity.demo import synthetic
from library_identity.demo.synthetic import fraction, stable_hash
from library_identity.errors import SeedError

DEFAULT_ROWS = 64_676

REFERENCE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
# Rotation activity is judged against CURRENT_DATE, so fixed dates far on either side keep
# "active" and "killed" stable no matter when the sample is read.
KILLED_ON = date(2024, 1, 1)
FUTURE_KILL = date(2099, 12, 31)

VARIOUS_ARTISTS = "Various Artists"
VA_CODE_LETTERS = "V/A"
SMALLINT_MAX = 32_767

# Shares at the default size.
ARTISTS_PER_ROW = 1 / 1.5
VA_SHARE = 6_300 / DEFAULT_ROWS
# V/A rows never carry a canonical id (the production dry run saw none), so the non-V/A
# share is raised to land near 46% overall.
CANONICAL_SHARE = 0.46 / (1 - VA_SHARE)
NULL_ARTIST_NAME_SHARE = 0.003
MINTED_SHARE = 0.03
# Legacy ids run up to about 72,276 for about 62,700 legacy rows: the rest are gaps.
LEGACY_GAP_SHARE = 72_276 / (DEFAULT_ROWS * (1 - MINTED_SHARE)) - 1
ACTIVE_ROTATION_AT_DEFAULT = 310
KILLED_PER_ACTIVE = 0.4
LIBRARIAN_LINK_SHARE = 0.02

# V/A sub-kinds as cumulative thresholds on fraction("va-kind", id).
_VA_VARIOUS = 0.80  # "Various Artists", Z call letters, credits
_VA_OTHER_NAME = 0.92  # another V/A-shaped name, Z call letters, credits
_VA_CURATED = 0.95  # an ordinary artist name (label or DJ compilation), Z, credits
_VA_CTA_ONLY = 0.98  # credits but no Z marker; the remainder: Z marker but no credits
_OTHER_VA_NAMES = tuple(dict.fromkeys(n for n in synthetic.VA_NAMES if n != VARIOUS_ARTISTS))

# Pairs that fold (wxyc_schema.fold_artist_name) to one key, so folded matching of those
# credits finds two catalogue artists and must treat them as ambiguous.
FOLD_COLLISIONS = (
    ("Björk", "Bjork"),
    ("Motörhead", "Motorhead"),
    ("Sigur Rós", "Sigur Ros"),
    ("Mötley Crüe", "Motley Crue"),
    ("beatles", "Beatles"),
)
POOL_COLLISIONS = 6  # more such pairs, taken from the first accented credit names

TABLES = ("artists", "library", "compilation_track_artist", "rotation")
# Emptied by replace=True.
_WIPE_STATION = ("rotation", "compilation_track_artist", "library_identity_source",
                 "library_identity", "library_identity_history", "library", "artists")
_WIPE_LOADER = ("merge_history", "merge_skips", "merges", "library_identity_artist_ids",
                "raw_verdicts", "rotation_refresh_results", "runs")

_LIBRARY_COLUMNS = ("id", "artist_id", "genre_id", "format_id", "album_title", "artist_name",
                    "code_number", "code_volume_letters", "legacy_release_id",
                    "canonical_entity_id", "canonical_entity_confidence",
                    "canonical_entity_resolved_at", "add_date", "last_modified")
# The station's library rows name a genre and a format; the sample files every album under
# one of each (ids the station's lookup tables hold; the project's own copy has no such
# tables, and an older copy no such columns).
GENRE_ID = 1
FORMAT_ID = 1
_CTA_COLUMNS = ("id", "library_id", "artist_name", "track_title", "track_position",
                "track_artist_id", "track_artist_link_confidence", "track_artist_link_method")
_ROTATION_COLUMNS = ("id", "album_id", "legacy_rotation_id", "legacy_library_release_id",
                     "rotation_bin", "add_date", "kill_date", "artist_name", "album_title",
                     "discogs_release_id", "discogs_release_id_source", "lml_identity_id")
_ARTIST_COLUMNS = ("id", "artist_name", "alphabetical_name", "code_letters", "add_date",
                   "last_modified")


@dataclass(frozen=True)
class SeedSummary:
    library_rows: int
    artists: int
    va_rows: int
    compilation_track_rows: int
    canonical_rows: int
    null_artist_name_rows: int
    rotation_rows: int
    active_rotation_rows: int
    rotation_with_identity: int
    seconds: float


def seed_library(conn: psycopg.Connection, rows: int = DEFAULT_ROWS, *,
                 replace: bool = False) -> SeedSummary:
    """Write the sample library for `rows` library rows in one transaction.

    Refuses when the library already has rows unless `replace`, which first empties the
    station tables and the loader's run logs. Only tables this project's migration created
    are written, so a station's own database is never touched.
    """
    if rows < 0:
        raise SeedError(f"rows must be 0 or more, not {rows}")
    started = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur:
        _check_owned(cur)
        # Self-conflicting lock: two seeds cannot interleave their check and their writes.
        cur.execute("lock table wxyc_schema.library in share row exclusive mode")
        if replace:
            _wipe(cur)
        else:
            _refuse_if_not_empty(cur)
        _fill(cur, rows)
        summary = _summarise(cur)
    return SeedSummary(**summary, seconds=round(time.perf_counter() - started, 3))


def release_identity_id(discogs_release_id: int) -> int:
    """The LML release identity id stored for a Discogs release: the id the stand-in's
    identity/resolve returns for it."""
    return synthetic.release_identity_id("discogs_release", str(discogs_release_id))


def active_rotation_count(rows: int) -> int:
    return max(1, round(rows * ACTIVE_ROTATION_AT_DEFAULT / DEFAULT_ROWS)) if rows > 0 else 0


# --- guards and wiping --------------------------------------------------------------------

def _check_owned(cur: psycopg.Cursor) -> None:
    cur.execute("select to_regclass('identity_loader.station_objects') is not null")
    row = cur.fetchone()
    if not row or not row[0]:
        raise SeedError("identity_loader.station_objects is missing; run the migrations first")
    cur.execute(
        """select t.name from unnest(%s::text[]) as t(name)
           where not exists (select 1 from identity_loader.station_objects o
                             where o.object_kind = 'table' and o.object_name = t.name)
           order by t.name""",
        [[f"wxyc_schema.{t}" for t in (*TABLES, "library_identity", "library_identity_source",
                                       "library_identity_history")]],
    )
    foreign = [r[0] for r in cur.fetchall()]
    if foreign:
        raise SeedError(
            f"{', '.join(foreign)} were not created by this project's migration (see "
            "identity_loader.station_objects); refusing to write a synthetic sample into a "
            "station's own tables")


def _count(cur: psycopg.Cursor, table: str) -> int:
    cur.execute(sql.SQL("select count(*) from wxyc_schema.{}").format(sql.Identifier(table)))
    row = cur.fetchone()
    return int(row[0]) if row else 0


def _refuse_if_not_empty(cur: psycopg.Cursor) -> None:
    # Artists and rotation can hold rows without library rows; explicit ids would collide.
    for table in ("library", "artists", "rotation"):
        n = _count(cur, table)
        if n:
            raise SeedError(f"wxyc_schema.{table} already has {n} rows; pass replace=True "
                            "(--replace) to wipe the sample and reseed")


def _wipe(cur: psycopg.Cursor) -> None:
    # TRUNCATE rather than DELETE: deleting artists runs one foreign-key probe per artist
    # against library.artist_id, which has no index, so DELETE grows quadratically. No
    # CASCADE: a table outside this list that references these makes the wipe fail loudly.
    targets = [sql.Identifier("wxyc_schema", t) for t in _WIPE_STATION]
    for table in _WIPE_LOADER:
        cur.execute("select to_regclass(%s) is not null", [f"identity_loader.{table}"])
        row = cur.fetchone()
        if row and row[0]:
            targets.append(sql.Identifier("identity_loader", table))
    # The merge's verdict state describes the log being wiped: it goes too (the next
    # build starts it again from the empty log).
    cur.execute("select to_regclass(%s) is not null",
                [dbt_names.qualified(dbt_names.VERDICT_STATE)])
    row = cur.fetchone()
    if row and row[0]:
        targets.append(dbt_names.relation(dbt_names.VERDICT_STATE))
    cur.execute(sql.SQL("truncate table {} restart identity").format(sql.SQL(", ").join(targets)))


def _set_sequences(cur: psycopg.Cursor) -> None:
    for table in TABLES:
        cur.execute(sql.SQL(
            "select setval(pg_get_serial_sequence({qualified}, 'id'), coalesce(max(id), 1), "
            "max(id) is not null) from wxyc_schema.{table}").format(
                qualified=sql.Literal(f"wxyc_schema.{table}"), table=sql.Identifier(table)))
    # New rows get minted legacy ids after the sample's own minted ones.
    cur.execute(
        """select setval(s, coalesce(max(l.legacy_release_id), 1000000),
                         max(l.legacy_release_id) is not null)
           -- The station's column takes its default from a sequence no column owns.
           from coalesce(pg_get_serial_sequence('wxyc_schema.library', 'legacy_release_id'),
                         to_regclass('wxyc_schema.library_legacy_release_id_seq')::text) as s
           left join wxyc_schema.library l on l.legacy_release_id >= 1000000
           where s is not null
           group by s""")


def _summarise(cur: psycopg.Cursor) -> dict[str, int]:
    cur.execute(
        """select
             (select count(*) from wxyc_schema.library),
             (select count(*) from wxyc_schema.artists),
             (select count(*) from wxyc_schema.library l
               where coalesce(l.code_volume_letters, '') like 'Z%'
                  or exists (select 1 from wxyc_schema.compilation_track_artist c
                             where c.library_id = l.id)),
             (select count(*) from wxyc_schema.compilation_track_artist),
             (select count(*) from wxyc_schema.library where canonical_entity_id is not null),
             (select count(*) from wxyc_schema.library where artist_name is null),
             (select count(*) from wxyc_schema.rotation),
             (select count(*) from wxyc_schema.rotation
               where kill_date is null or kill_date > current_date),
             (select count(*) from wxyc_schema.rotation
               where (kill_date is null or kill_date > current_date)
                 and discogs_release_id is not null and lml_identity_id is not null)""")
    row = cur.fetchone()
    assert row is not None
    keys = ("library_rows", "artists", "va_rows", "compilation_track_rows", "canonical_rows",
            "null_artist_name_rows", "rotation_rows", "active_rotation_rows",
            "rotation_with_identity")
    return dict(zip(keys, (int(v) for v in row), strict=True))


# --- artists ------------------------------------------------------------------------------

def alphabetical_name(name: str) -> str:
    """How the card catalogue files a name: a leading "The " moves to the end."""
    stripped = name.strip() or name
    if stripped[:4].lower() == "the " and stripped[4:].strip():
        stripped = f"{stripped[4:].strip()}, {stripped[:3]}"
    return stripped[:128]


def code_letters(alphabetical: str) -> str:
    letters = "".join(ch for ch in alphabetical if ch.isalpha()).upper()[:4]
    return letters or "#"  # names with no letters at all, like "!!!"


def _strip_marks(name: str) -> str:
    decomposed = unicodedata.normalize("NFD", name)
    return unicodedata.normalize(
        "NFC", "".join(ch for ch in decomposed if not 0x300 <= ord(ch) <= 0x36F))


@dataclass
class _Artists:
    ids: dict[str, int] = field(default_factory=dict)
    rows: list[tuple[int, str, str, str, date, datetime]] = field(default_factory=list)

    def add(self, name: str, *, va: bool = False) -> int:
        """The id of the artist with exactly this name, adding it when new."""
        known = self.ids.get(name)
        if known is not None:
            return known
        artist_id = len(self.rows) + 1
        if va:
            alpha, letters = name, VA_CODE_LETTERS
        else:
            alpha = alphabetical_name(name)
            letters = code_letters(alpha)
        self.ids[name] = artist_id
        added = _timestamp_before_reference("artist-added", artist_id, span_days=30 * 365)
        self.rows.append((artist_id, name, alpha, letters, added.date(), added))
        return artist_id


def _build_artists(library_artist_count: int) -> tuple[_Artists, list[int]]:
    """All artists, and the artist id of each library artist index (names may repeat)."""
    artists = _Artists()
    # V/A artists first, so "Various Artists" is id 1 at every size.
    artists.add(VARIOUS_ARTISTS, va=True)
    for name in _OTHER_VA_NAMES:
        artists.add(name, va=True)
    for accented, plain in FOLD_COLLISIONS:
        artists.add(accented)
        artists.add(plain)
    by_index = [artists.add(synthetic.artist_name(i)) for i in range(library_artist_count)]
    pool = [synthetic.track_artist_name(k) for k in range(synthetic.TRACK_ARTIST_POOL_SIZE)]
    for name in pool:
        artists.add(name)
    partners = 0
    for name in pool:
        if partners == POOL_COLLISIONS:
            break
        plain = _strip_marks(name)
        if (plain != name and plain not in artists.ids
                and synthetic.fold(plain) == synthetic.fold(name)):
            artists.add(plain)
            partners += 1
    return artists, by_index


# --- library ------------------------------------------------------------------------------

@dataclass
class _Plan:
    """What the library pass leaves for the CTA and rotation passes."""
    credited: list[tuple[int, int]] = field(default_factory=list)  # (library id, legacy id)
    # library id -> (artist_name, album_title, legacy id, Discogs release id or None)
    snapshots: dict[int, tuple[str | None, str, int, int | None]] = field(default_factory=dict)


def _timestamp_before_reference(*key: object, span_days: int) -> datetime:
    return REFERENCE_TIME - timedelta(seconds=stable_hash(*key) % (span_days * 86_400))


def _canonical(library_id: int) -> tuple[str, float, int]:
    """(canonical_entity_id, confidence, release id) for a resolved row."""
    h = stable_hash("canonical", library_id)
    roll = h % 100
    release_id = 1 + (h >> 8) % 33_000_000
    if roll < 90:
        entity = f"discogs:master:{1 + (h >> 8) % 3_500_000}"
        release_id = 0
    elif roll < 96:
        entity = f"discogs:release:{release_id}"
    else:
        entity = f"discogs:{release_id}"
    confidence = round(0.70 + 0.30 * fraction("canonical-confidence", library_id), 3)
    return entity, confidence, release_id


def _z_letters(library_id: int) -> str:
    h = stable_hash("volume", library_id)
    if h % 2:
        return "Z"
    second = chr(65 + (h >> 1) % 26)
    return f"Z{second}{chr(65 + (h >> 8) % 26)}" if (h >> 16) % 10 == 0 else f"Z{second}"


def _other_volume_letters(library_id: int) -> str | None:
    roll = stable_hash("volume", library_id) % 1000
    if roll < 40:
        return chr(65 + roll % 25)  # A..Y: a volume marker that is not V/A
    if roll < 45:
        return ""  # counts like NULL in the V/A test
    return None


def _library_rows(rows: int, artists: _Artists, by_index: list[int], plan: _Plan,
                  rotation_albums: set[int]) -> Iterator[tuple[object, ...]]:
    various_id = artists.ids[VARIOUS_ARTISTS]
    heavy = max(1, len(by_index) // 8)
    first_minted = rows - round(rows * MINTED_SHARE) + 1  # the newest rows were minted
    next_legacy, next_minted = 1, 1_000_000
    albums_per_artist: dict[int, int] = {}
    names = {artist_id: name for name, artist_id in artists.ids.items()}
    for library_id in range(1, rows + 1):
        h = stable_hash("library-artist", library_id)
        # Half the rows go to the first eighth of the artists: many artists, several albums.
        artist_id = by_index[(h >> 1) % (len(by_index) if h % 2 else heavy)]
        volume = _other_volume_letters(library_id)
        credited = False
        is_va = fraction("va", library_id) < VA_SHARE
        if is_va:
            kind = fraction("va-kind", library_id)
            volume, credited = _z_letters(library_id), True
            if kind < _VA_VARIOUS:
                artist_id = various_id
            elif kind < _VA_OTHER_NAME:
                pick = stable_hash("va-name", library_id) % len(_OTHER_VA_NAMES)
                artist_id = artists.ids[_OTHER_VA_NAMES[pick]]
            elif kind < _VA_CURATED:
                pass
            elif kind < _VA_CTA_ONLY:
                artist_id, volume = various_id, None
            else:
                artist_id, credited = various_id, False

        if library_id >= first_minted:
            legacy_id, next_minted = next_minted, next_minted + 1
        else:
            legacy_id = next_legacy
            next_legacy += 2 if fraction("legacy-gap", library_id) < LEGACY_GAP_SHARE else 1

        number = albums_per_artist.get(artist_id, 0) % SMALLINT_MAX + 1
        albums_per_artist[artist_id] = number
        artist_name = (None if fraction("null-artist-name", library_id) < NULL_ARTIST_NAME_SHARE
                       else names[artist_id])
        title = synthetic.album_title(library_id)
        added = _timestamp_before_reference("added", library_id, span_days=30 * 365)
        entity: str | None = None
        confidence: float | None = None
        resolved: datetime | None = None
        release_id = 0
        if not is_va and fraction("canonical", library_id) < CANONICAL_SHARE:
            entity, confidence, release_id = _canonical(library_id)
            span = REFERENCE_TIME - added
            resolved = (added + span * fraction("resolved", library_id)).replace(microsecond=0)
        if credited:
            plan.credited.append((library_id, legacy_id))
        if library_id in rotation_albums:
            plan.snapshots[library_id] = (artist_name, title, legacy_id, release_id or None)
        yield (library_id, artist_id, GENRE_ID, FORMAT_ID, title, artist_name, number, volume,
               legacy_id, entity, confidence, resolved, added, resolved or added)


# --- compilation credits ------------------------------------------------------------------

def _cta_rows(plan: _Plan, artists: _Artists) -> Iterator[tuple[object, ...]]:
    cta_id = 0
    for library_id, legacy_id in plan.credited:
        for n, track in enumerate(synthetic.compilation_tracks(legacy_id)):
            cta_id += 1
            linked = None
            if fraction("librarian", library_id, n) < LIBRARIAN_LINK_SHARE:
                linked = artists.ids.get(track.artist_name)
            if linked is None:
                yield (cta_id, library_id, track.artist_name, track.title, track.position,
                       None, None, None)
            else:
                yield (cta_id, library_id, track.artist_name, track.title, track.position,
                       linked, 1.0, "librarian")


# --- rotation -----------------------------------------------------------------------------

def _rotation_plan(rows: int) -> list[tuple[bool, int]]:
    """(active, album id) per rotation row, killed rows first as the older ones."""
    active = active_rotation_count(rows)
    killed = round(active * KILLED_PER_ACTIVE)
    plan = [(False, 1 + stable_hash("rotation-album", "killed", r) % rows)
            for r in range(killed)]
    plan += [(True, 1 + stable_hash("rotation-album", "active", r) % rows)
             for r in range(active)]
    return plan


def _rotation_rows(rotation: list[tuple[bool, int]],
                   plan: _Plan) -> Iterator[tuple[object, ...]]:
    active_seen = 0
    for rotation_id, (active, album_id) in enumerate(rotation, start=1):
        h = stable_hash("rotation", rotation_id)
        artist_name, title, legacy_id, canonical_release = plan.snapshots[album_id]
        if active:
            add_date = date(2025, 9, 1) + timedelta(days=h % 120)
            # A few active rows carry a kill date that has not come yet.
            kill_date = FUTURE_KILL if active_seen % 150 == 75 else None
            active_seen += 1
            with_release = fraction("rotation-release", rotation_id) < 0.95
        else:
            add_date = date(2023, 1, 1) + timedelta(days=h % 300)
            kill_date = KILLED_ON + timedelta(days=(h >> 16) % 300)
            with_release = fraction("rotation-release", rotation_id) < 0.80
        release_id = lml_id = None
        source = "tubafrenzy_paste"
        if with_release:
            release_id = canonical_release or 1 + (h >> 24) % 33_000_000
            roll = (h >> 8) % 10
            source = ("library_identity" if roll < 2
                      else "lml_offline_backfill" if roll < 3 else "tubafrenzy_paste")
            # The rest wait for the lml_identity_id backfill job.
            if fraction("rotation-identity", rotation_id) < 0.90:
                lml_id = release_identity_id(release_id)
        yield (rotation_id, album_id, 20_000 + rotation_id, legacy_id, "SLMH"[h % 4],
               add_date, kill_date, artist_name, title, release_id, source, lml_id)


# --- writing ------------------------------------------------------------------------------

def _copy(cur: psycopg.Cursor, table: str, columns: tuple[str, ...],
          source: Iterable[Sequence[object]]) -> None:
    cur.execute("select array_agg(column_name::text) from information_schema.columns "
                "where table_schema = 'wxyc_schema' and table_name = %s", [table])
    row = cur.fetchone()
    present = set(row[0] or ()) if row else set()
    # Columns an older copy of the table lacks are left out of the COPY.
    keep = [i for i, column in enumerate(columns) if column in present]
    statement = sql.SQL("copy wxyc_schema.{} ({}) from stdin").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(columns[i]) for i in keep))
    whole = len(keep) == len(columns)
    with cur.copy(statement) as copy:
        for values in source:
            copy.write_row(values if whole else [values[i] for i in keep])


def _fill(cur: psycopg.Cursor, rows: int) -> None:
    """Write the sample into empty station tables, unguarded: callers check ownership."""
    if rows:
        _write(cur, rows)
    _set_sequences(cur)
    for table in TABLES:
        cur.execute(sql.SQL("analyze wxyc_schema.{}").format(sql.Identifier(table)))


def _write(cur: psycopg.Cursor, rows: int) -> None:
    artists, by_index = _build_artists(max(1, round(rows * ARTISTS_PER_ROW)))
    _copy(cur, "artists", _ARTIST_COLUMNS, artists.rows)
    rotation = _rotation_plan(rows)
    plan = _Plan()
    _copy(cur, "library", _LIBRARY_COLUMNS,
          _library_rows(rows, artists, by_index, plan, {album for _, album in rotation}))
    _copy(cur, "compilation_track_artist", _CTA_COLUMNS, _cta_rows(plan, artists))
    _copy(cur, "rotation", _ROTATION_COLUMNS, _rotation_rows(rotation, plan))
