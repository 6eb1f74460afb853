"""The run outcome rule: a run that asked LML about its rows but landed little of what it
asked did not succeed, whatever it survived. Shares are of the rows (or identities) the
run asked about; a dry run lands nothing and is not judged.

- More than MOSTLY of them in calls LML failed (an HTTP error, a timeout): LML is not
  serving the job; the run fails with exit 3.
- More than MOSTLY of them answered with results that could not be used (untrusted,
  invalid, refused by the database): the run fails with exit 1.

Either way what was landed stays landed.
"""

from __future__ import annotations

from dataclasses import dataclass

from library_identity.errors import EXIT_GATE, EXIT_LML

MOSTLY = 0.5


@dataclass(frozen=True)
class Shortfall:
    message: str
    lml_failed: bool  # most calls failed (exit 3), rather than most answers unusable (exit 1)

    @property
    def exit_code(self) -> int:
        return EXIT_LML if self.lml_failed else EXIT_GATE


def shortfall(asked: int, failed: int, unusable: int, *, noun: str = "rows",
              detail: str = "") -> Shortfall | None:
    """Why a run with these counts did not succeed, or None when it did."""
    if not asked:
        return None
    if failed > MOSTLY * asked:
        return Shortfall(f"LML failed the calls for {failed:,} of {asked:,} {noun}",
                         lml_failed=True)
    if unusable > MOSTLY * asked:
        return Shortfall(f"{unusable:,} of {asked:,} {noun} could not be landed"
                         f"{f' ({detail})' if detail else ''}; the rows that were valid are "
                         "landed", lml_failed=False)
    return None
