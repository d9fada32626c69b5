"""Isolated steps: one git worktree and OS sandbox per attempt, scope, landing, provenance."""
