"""Ralph's `IMPLEMENTATION_PLAN.md` (and `fix_plan.md`): the prioritised list the loop works
through one item a turn, top first; ticked, struck or `✅` items are done."""

from __future__ import annotations

import re
from pathlib import Path

from uet_doit.plans.dialects.checklist import read_loose
from uet_doit.plans.dialects.model import PlanDoc

NAME = "ralph"
TITLE = "Ralph IMPLEMENTATION_PLAN.md"
EXAMPLE = "## High priority\n- [ ] Add retries to src/net/client.py"


def detect(path: Path, text: str) -> str | None:
    if re.fullmatch(r"(?i)@?(implementation_plan|fix_plan)\.md", path.name):
        return f"the file name {path.name} (Ralph's plan)"
    return None


def read(text: str, source: str) -> PlanDoc:
    return read_loose(text, source, "Ralph plan item")
