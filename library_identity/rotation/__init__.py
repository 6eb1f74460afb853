"""`library-identity rotation`: keep the rotation's LML release identities filled (backfill)
and their LML caches warm (refresh), and report coverage."""
