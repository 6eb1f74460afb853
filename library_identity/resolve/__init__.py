"""`library-identity resolve`: candidates → LML bulk-resolve → raw verdict log → dbt merge."""
