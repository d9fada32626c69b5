"""How one attempt runs a tool: adapters, routing, prices, redaction, processes, failure classes."""
