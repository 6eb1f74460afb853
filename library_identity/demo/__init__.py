"""What only the demo and the tests need: the LML stand-in, the sample library and the
synthetic data both share. Installed with the `demo` extra and imported only by the
commands that use it (`demo`, `seed`, `lml-standin`)."""
