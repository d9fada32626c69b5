"""Things that write bundles: markdown plan conversion, legacy import, bootstrap."""
