"""What the rotation jobs share beyond the LML gate and the writer."""

from __future__ import annotations

# The station's rotation jobs run with 60 s; its default of 5 s is too short (schema §6 #8).
STATEMENT_TIMEOUT_MS = 60_000
# Mirrors stg_station__rotation.is_active (station-schema §1.7); used where the job must
# read and write the station table itself rather than a dbt view.
ACTIVE_ROTATION = "(kill_date is null or kill_date > current_date)"
