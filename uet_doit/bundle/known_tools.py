"""What the bundle checks are told of the tools installed here: the bundle layer knows no
adapter, the layer that does (tools/routing.py: known_tools) says which exist and can review.
Its own module, light to import: routing needs it at start-up, not the checks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownTools:
    """The tools a bundle may name here, and which of them can review, as the layer that
    knows the adapters says (tools/routing.py: default_known_tools): the bundle knows none."""

    names: frozenset[str]
    reviewers: frozenset[str]

    def stamp(self) -> str:
        """What a kept validation depends on: installing a tool changes it."""
        return ",".join(sorted(self.names)) + ";" + ",".join(sorted(self.reviewers))
