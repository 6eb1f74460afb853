"""A stand-in for LML, the station's library-metadata-lookup service, on loopback.

Speaks the HTTP contract (shared/reference/lml-contract.md) with deterministic verdicts, so
tests, benchmarks and the demo run against a real server without the real service.
"""

from loader.standin.server import RequestRecord, StandIn, StandInConfig, serve

__all__ = ["RequestRecord", "StandIn", "StandInConfig", "serve"]
