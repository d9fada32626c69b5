"""Kiro spec `tasks.md` (`.kiro/specs/<feature>/tasks.md`): `# Implementation Plan`, then
`- [x] 1. Title` groups of `- [ ] 1.2 Title` items, details as bullets, `_Requirements: 1.2_`
for traceability, `- [ ]*` for optional items. No explicit edges: the order is the sequence."""

from __future__ import annotations

import re
from pathlib import Path

from uet_doit.plans.dialects.checklist import entries, read_loose
from uet_doit.plans.dialects.model import PlanDoc
from uet_doit.plans.dialects.numbered import count, read_numbered

NAME = "kiro"
TITLE = "Kiro spec tasks.md"
EXAMPLE = "- [ ] 1. Set up the API\n- [ ] 1.1 Add GET /api/items  _Requirements: 2.1_"


def detect(path: Path, text: str) -> str | None:
    numbered = count(text)
    checks = sum(1 for e in entries(text) if e.kind == "check")
    if ".kiro/specs/" in path.as_posix() and (numbered or checks):
        return f"a tasks file under .kiro/specs/ with {numbered or checks} checkbox items"
    if numbered >= 2 and re.search(r"(?m)^\s*[-*]?\s*_Requirements:", text):
        return f"{numbered} numbered checkbox items with `_Requirements: ..._` lines"
    if numbered >= 2 and re.search(r"(?m)^#\s+Implementation Plan\s*$", text):
        return f"`# Implementation Plan` with {numbered} numbered checkbox items (`- [ ] 1.1 ...`)"
    return None


def read(text: str, source: str) -> PlanDoc:
    if count(text):
        doc = read_numbered(text, source, "Kiro numbered task", headings=False)
    else:
        doc = read_loose(text, source, "Kiro task")  # a tasks.md written without numbers
    doc.context.append(f"the spec's requirements.md and design.md sit beside {source}")
    return doc
