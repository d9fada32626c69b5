"""The bundle format: model, loader, checks, schema, graph. Read once, checked all at once."""
