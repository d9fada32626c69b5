"""Bounds on a plan, checked on its raw lines before the markdown parser sees it.

markdown-it builds several tokens and tree nodes per table cell: a 12 MB table of 3 million
cells needed ~500 bytes per input byte. A plan past these bounds is refused at its line.
"""

from __future__ import annotations

import re
from pathlib import Path

from uet_doit.errors import UsageError

#: the largest plan `uet convert` reads (plans are kilobytes; ~110 bytes of memory a byte)
MAX_PLAN_BYTES = 2_000_000
#: the most table cells (rows x header columns) in one plan: ~2 KB of memory each
MAX_TABLE_CELLS = 50_000

_DELIMITER_ROW = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")


class PlanTooLarge(UsageError):
    """A plan past a bound: refused before it is parsed (exit 3), with or without `--with`."""


def _refusal(source: str, line: int | None, message: str, hint: str) -> PlanTooLarge:
    where = f"{source}:{line}" if line else source
    return PlanTooLarge(f"{where}: {message}", hint)


def _check_size(size: int, source: str) -> None:
    if size > MAX_PLAN_BYTES:
        raise _refusal(
            source,
            None,
            f"the plan is {size:,} bytes; uet convert reads plans up to {MAX_PLAN_BYTES:,}",
            "split it into several plans and convert each",
        )


def check_plan_file(path: Path) -> None:
    """Refuse a plan file larger than MAX_PLAN_BYTES before reading it."""
    try:
        size = path.stat().st_size
    except OSError:
        return  # reading it says what is wrong
    _check_size(size, str(path))


def _columns(header: str) -> int:
    return len(header.strip().strip("|").split("|"))


def check_plan_text(text: str, source: str) -> None:
    """Refuse a plan past MAX_PLAN_BYTES or with more than MAX_TABLE_CELLS table cells
    (naming the table that crosses it); code fences are skipped, as the parser skips them."""
    _check_size(len(text), source)
    lines = text.split("\n")
    fence: str | None = None
    cells = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            i += 1
            continue
        if opened:
            fence = opened.group(1)
            i += 1
            continue
        if "|" in line and i + 1 < len(lines) and _DELIMITER_ROW.match(lines[i + 1]):
            end = i + 2
            while end < len(lines) and lines[end].strip() and "|" in lines[end]:
                end += 1
            rows, cols = end - i - 1, _columns(line)
            cells += rows * cols
            if cells > MAX_TABLE_CELLS:
                more = "" if cells == rows * cols else f", {cells:,} with the tables before it"
                raise _refusal(
                    source,
                    i + 1,
                    f"a table of {rows:,} rows x {cols:,} columns ({rows * cols:,} cells{more}); "
                    f"uet convert reads plans with up to {MAX_TABLE_CELLS:,} table cells",
                    "split the plan or the table, or keep the data in a file the plan names",
                )
            i = end
            continue
        i += 1
