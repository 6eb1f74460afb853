"""library-identity: keeps a station's music library linked to outside identities via LML."""

__version__ = "0.1.0"
