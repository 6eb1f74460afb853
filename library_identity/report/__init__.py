"""The coverage report: numbers from dbt's report models (`data`), charts drawn with
matplotlib (`charts`) and one self-contained HTML page (`page`)."""
