"""What every job (resolve, rotation backfill, rotation refresh) is built from.

- `lock`: one run of a job at a time (a Postgres advisory lock), and the report views'
  lock.
- `records`: the run records in identity_loader.runs.
- `job`: one run from lock to record (`JobRun`) and the failed-calls-in-a-row rule.
- `calls`: LML calls made on worker threads, and the loop that keeps them in flight.
- `call_settings`: the LML call settings every job declares alike (timeout, attempts,
  failures in a row, outage budget).
"""
