"""Readers of plans kept as data: JSON/JSONL or front matter (Task Master, Beads, Backlog)."""
