"""A stand-in for LML, the station's library-metadata-lookup service, on loopback.

Serves LML's routes as the loader calls them (health, bulk resolve, refresh for identities,
release-identity resolve; bearer auth, the same caps, status codes and error bodies) with
deterministic verdicts and fault injection, so tests, benchmarks and the demo run against a
real HTTP server without the real service.
"""

from library_identity.demo.standin.server import RequestRecord, StandIn, StandInConfig, serve

__all__ = ["RequestRecord", "StandIn", "StandInConfig", "serve"]
