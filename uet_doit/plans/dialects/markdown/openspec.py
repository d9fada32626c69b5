"""OpenSpec change `tasks.md` (`openspec/changes/<change>/tasks.md`): `## 1. Section`
headings over `- [ ] 1.1 Task` items, ticked as they are done; the order is the sequence."""

from __future__ import annotations

import re
from pathlib import Path

from uet_doit.plans.dialects.checklist import entries, read_loose
from uet_doit.plans.dialects.model import PlanDoc
from uet_doit.plans.dialects.numbered import count, read_numbered

NAME = "openspec"
TITLE = "OpenSpec change tasks.md"
EXAMPLE = "## 1. Implementation\n- [ ] 1.1 Create the database schema"


def detect(path: Path, text: str) -> str | None:
    numbered = count(text)
    headings = len(re.findall(r"(?m)^##\s+\d+\.\s+\S", text))
    if "openspec/changes/" in path.as_posix() and (numbered or _checks(text)):
        return (
            f"a tasks file under openspec/changes/ with {numbered or _checks(text)} checkbox items"
        )
    if (
        headings >= 1
        and numbered >= 2
        and not re.search(r"(?m)^\s*[-*]\s+\[.\]\*?\s+\d+\.\s", text)
    ):
        return f"{headings} `## N. Section` heading(s) over {numbered} `- [ ] N.M` items"
    return None


def _checks(text: str) -> int:
    return sum(1 for e in entries(text) if e.kind == "check")


def read(text: str, source: str) -> PlanDoc:
    """Numbered (`- [ ] 1.1`, the template) or, as many changes are written, plain checkboxes
    under section headings, the nested ones their item's instruction."""
    if count(text):
        return read_numbered(text, source, "OpenSpec numbered task", headings=True)
    return read_loose(text, source, "OpenSpec task")
