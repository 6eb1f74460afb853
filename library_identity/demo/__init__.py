"""What only the demo and the tests need: the embedded Postgres (`embedded`, whose server
comes with the `demo` extra), the LML stand-in, the sample library and the synthetic data
both share. Imported only by the commands that use it (`demo`, `seed`, `lml-standin`, and
any command run without DATABASE_URL)."""
