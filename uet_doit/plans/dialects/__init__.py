"""Plan dialects people write for AI agents, each read by its own module, found by detection.

Every module has NAME, TITLE, EXAMPLE, `detect(path, text) -> reason | None` and
`read(text, source) -> PlanDoc`. Detection asks them in REGISTRY order (data formats and
front matter first, then the markdown families, most specific first); the first reason wins
and `uet convert --explain` prints it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from uet_doit.errors import UsageError
from uet_doit.plans.dialects.model import PlanDoc

#: reader modules under uet_doit.plans.dialects (data/: JSON or front matter; markdown/:
#: markdown families), in detection order
REGISTRY = (
    "data.taskmaster",
    "data.beads",
    "data.todo",
    "data.cursor",
    "data.speckitty",
    "data.backlog",
    "markdown.speckit",
    "markdown.kiro",
    "markdown.openspec",
    "markdown.conductor",
    "markdown.superpowers",
    "markdown.bmad",
    "markdown.execplan",
    "markdown.ralph",
)


@dataclass(frozen=True)
class Detected:
    """The dialect a plan is written in, and why we think so."""

    name: str
    title: str
    reason: str
    module: ModuleType

    def read(self, text: str, source: str) -> PlanDoc:
        doc: PlanDoc = self.module.read(text, source)
        return doc


def modules() -> list[ModuleType]:
    return [importlib.import_module(f"uet_doit.plans.dialects.{m}") for m in REGISTRY]


def names() -> list[str]:
    return [str(m.NAME) for m in modules()]


def detect(path: Path, text: str) -> Detected | None:
    """The first dialect that recognises the plan, else None (read as a generic plan)."""
    for module in modules():
        reason = module.detect(path, text)
        if reason:
            return Detected(module.NAME, module.TITLE, reason, module)
    return None


def forced(name: str) -> Detected:
    """`--dialect NAME` (`speckit` and `spec-kit` are one name)."""
    wanted = name.lower().replace("-", "").replace("_", "")
    for module in modules():
        if module.NAME.replace("-", "") == wanted:
            return Detected(module.NAME, module.TITLE, "forced by --dialect", module)
    raise UsageError(
        f"--dialect {name!r} is not a dialect uet knows",
        "dialects: " + ", ".join([*names(), "markdown"]),
    )
