"""Everything that speaks to LML: the HTTP client and the contract's shapes."""

import sys

# httpx loads its own command line (rich and pygments: about a tenth of a second at every
# start) unless it cannot; the client never uses it.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
