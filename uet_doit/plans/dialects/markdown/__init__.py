"""Readers of markdown plan families: spec-kit, Kiro, OpenSpec, superpowers, Conductor, ..."""
