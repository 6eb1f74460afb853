"""Everything that speaks to LML: the HTTP client and the contract's shapes."""
