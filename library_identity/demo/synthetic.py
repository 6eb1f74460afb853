"""Deterministic synthetic music data shared by the sample library and the LML stand-in.

Both sides derive everything from integers (an artist index, a legacy release id), so
the stand-in can answer for a library it has never seen: a compilation's track list
comes from its legacy_release_id exactly as `seed` wrote it into compilation_track_artist.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass

_FIRST = (
    "Black", "Silver", "Velvet", "Neon", "Broken", "Quiet", "Electric", "Golden", "Hollow",
    "Paper", "Crystal", "Wild", "Lazy", "Iron", "Burning", "Sleepy", "Cosmic", "Feral",
    "Lunar", "Static", "Tender", "Rusty", "Ghost", "Sonic", "Violet", "Wooden", "Distant",
)
_SECOND = (
    "Owls", "Rivers", "Machines", "Sisters", "Lanterns", "Harbors", "Comets", "Gardens",
    "Foxes", "Engines", "Mirrors", "Tigers", "Choirs", "Satellites", "Orchards", "Wolves",
    "Arcades", "Tapes", "Horses", "Clouds", "Bells", "Pilots", "Swimmers", "Cathedrals",
)
_GIVEN = (
    "Ana", "Björn", "Chloé", "Dmitri", "Émile", "Fatoumata", "Giulia", "Håkan", "Ines",
    "José", "Kenji", "Léa", "Mónica", "Nils", "Oumou", "Piotr", "Renée", "Søren", "Tomás",
    "Ulla", "Zoë", "Ahmad", "Beyoncé", "Cécile", "Dörte",
)
_FAMILY = (
    "Andersson", "Brønstad", "Castañeda", "Dvořák", "Eriksson", "Fernández", "García",
    "Hernández", "Ibáñez", "Jónsdóttir", "Kowalczyk", "López", "Müller", "Núñez", "O'Brien",
    "Pérez", "Quiñones", "Røed", "Schäfer", "Touré", "Uribe", "Vázquez", "Wójcik", "Żak",
)
# Names that have broken loaders before: quotes, ampersands, non-Latin scripts, articles,
# parentheses, punctuation-only, trailing spaces, very long names.
TRICKY_NAMES = (
    "Sigur Rós", "Motörhead", "Björk", "Mötley Crüe", "The The", "!!!", "Ünloco",
    "Guns N’ Roses", "Simon & Garfunkel", "Hall&Oates", "坂本龍一", "Мумий Тролль",
    "فيروز", "BTS (방탄소년단)", "Sunn O)))", "Godspeed You! Black Emperor",
    "Sly & the Family Stone",
    "Prince (The Artist Formerly Known As)", "The Beatles", "beatles", "Beatles, The",
    "Bobby \"Blue\" Bland", "Tom Waits ", " Leading Space", "AC/DC", "Emerson, Lake & Palmer",
    "Jean-Michel Jarre", "Ólafur Arnalds", "µ-Ziq", "Aphex Twin", "Røyksopp", "Mùm",
    "Ensemble Intercontemporain; Pierre Boulez", "Back\\slash", "X" * 128,
)
VA_NAMES = (
    "Various Artists", "Various Artists", "Various Artists", "V/A", "Various",
    "Various Artists - Rock", "V.A.", "Soundtrack", "Various Artists-Rock-Y", "Compilation",
)
_TITLE_WORDS = (
    "Love", "Night", "Summer", "Dreams", "Fire", "Rain", "Heart", "City", "Blue", "Songs",
    "Echoes", "Shadows", "Light", "Dance", "Ocean", "Road", "Stars", "Home", "Time", "Fever",
    "Midnight", "Crimson", "Sessions", "Tapes", "Garden", "Machine", "Ghosts", "Tomorrow",
)


def stable_hash(*parts: object) -> int:
    """A 64-bit hash that is the same on every machine and every run."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def fraction(*parts: object) -> float:
    """A deterministic number in [0, 1)."""
    return stable_hash(*parts) / 2**64


def release_identity_id(source: str, external_id: str) -> int:
    """The LML release identity id for (source, canonical external id): the stand-in mints
    exactly these, and the sample rotation stores them, so the two agree."""
    return 1 + stable_hash("lml-release-identity", source, external_id) % 2_000_000_000


def fold(name: str | None) -> str:
    """Python twin of wxyc_schema.fold_artist_name: NFD, drop U+0300-U+036F, lowercase."""
    decomposed = unicodedata.normalize("NFD", name or "")
    return "".join(ch for ch in decomposed if not 0x300 <= ord(ch) <= 0x36F).lower()


def artist_name(index: int) -> str:
    """The index-th artist of the synthetic catalogue."""
    h = stable_hash("artist", index)
    if h % 50 == 0:
        return TRICKY_NAMES[(h // 50) % len(TRICKY_NAMES)]
    if h % 3 == 0:
        name = f"{_GIVEN[(h >> 8) % len(_GIVEN)]} {_FAMILY[(h >> 16) % len(_FAMILY)]}"
    else:
        name = f"{_FIRST[(h >> 8) % len(_FIRST)]} {_SECOND[(h >> 16) % len(_SECOND)]}"
        if (h >> 24) % 4 == 0:
            name = "The " + name
    # A suffix keeps the catalogue large enough that most names are distinct.
    return name if (h >> 32) % 5 == 0 else f"{name} {index % 997 + 1}"


def album_title(index: int) -> str:
    h = stable_hash("album", index)
    words = [_TITLE_WORDS[(h >> (8 * k)) % len(_TITLE_WORDS)] for k in range(1 + h % 3)]
    title = " ".join(words)
    if h % 97 == 0:
        title = ("Extended Deluxe Anniversary Edition of " + title + " ") * 4
    elif h % 31 == 0:
        title += " (Live at Ünter den Linden)"
    return title[:128].rstrip() or "Untitled"


TRACK_ARTIST_POOL_SIZE = 4000


def track_artist_name(index: int) -> str:
    """Track credits on compilations draw from a pool of this size."""
    return artist_name(1_000_000 + index % TRACK_ARTIST_POOL_SIZE)


@dataclass(frozen=True)
class Track:
    position: str | None
    artist_name: str
    title: str | None


def compilation_tracks(legacy_release_id: int) -> list[Track]:
    """The track credits of the compilation with this legacy_release_id.

    Unique on (artist_name, title) like the station's cta_unique_idx; about 78% of
    credits have no position, like the station's data.
    """
    h = stable_hash("tracks", legacy_release_id)
    count = 3 + h % 40 if h % 50 else 120 + h % 200
    tracks: list[Track] = []
    seen: set[tuple[str, str | None]] = set()
    for n in range(count):
        th = stable_hash("track", legacy_release_id, n)
        artist = track_artist_name(th % (TRACK_ARTIST_POOL_SIZE * 3))
        title = None if th % 23 == 0 else album_title(th >> 20)[:60]
        if (artist, title) in seen:
            continue
        seen.add((artist, title))
        position = str(n + 1) if (th >> 40) % 100 < 22 else None
        tracks.append(Track(position=position, artist_name=artist, title=title))
    return tracks


def is_va_name(name: str | None) -> bool:
    """LML's V/A rule: the lowercased name equals a V/A word or starts with a V/A prefix
    followed by the end or a character that is not a letter or digit."""
    if not name:
        return False
    lowered = name.lower()
    if lowered in ("various", "soundtrack", "compilation"):
        return True
    for prefix in ("various artists", "v/a", "v.a", "soundtracks"):
        if lowered.startswith(prefix):
            rest = lowered[len(prefix):]
            if not rest or not rest[0].isalnum():
                return True
    return False
