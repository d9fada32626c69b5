"""Plan text before markdown: front matter blanked, terminal boxes removed, title lines promoted.

Every rewrite keeps the number of lines, so a line number in `x-source` or `--explain` is the
line of the file the user wrote.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_VERTICAL = "\u2502\u2503\u2551|"
_BOX_LINE = re.compile(f"^\\s*[{_VERTICAL}](?P<inner>.*?)[{_VERTICAL}]?\\s*$")
_BORDER = re.compile(
    "^\\s*[\u256d\u256e\u256f\u2570\u250c\u2510\u2514\u2518\u2554\u2557\u255a\u255d\u251c\u2524+][\u2500\u2550\u2501\\-+\u252c\u2534]*[\u256d\u256e\u256f\u2570\u250c\u2510\u2514\u2518\u2554\u2557\u255a\u255d\u251c\u2524+]?\\s*$"
)
_UNICODE_VERTICAL = re.compile("^\\s*[\u2502\u2503\u2551]")

#: a heading or line that starts a unit of work: Week 3, Phase 03.5, PH-04, M1, WS-01, Sprint 2
UNIT_TITLE = re.compile(
    r"(?ix)^(?P<kind>weeks?|phases?|milestones?|stages?|sprints?|iterations?|epics?"
    r"|workstreams?|ws|ph|m)[\s\-_#]*(?P<num>\d+(?:\.\d+)*)(?:\s*[-\u2013\u2014]\s*\d+(?:\.\d+)*)?"
    r"(?![\w.])\s*(?:[:.)]|[-\u2013\u2014]+)?\s*(?P<title>.*)$"
)
#: a code like `PH-04` or `K-1` at the start of a title (upper case only: `e-mail` is no code)
CODE_TITLE = re.compile(
    r"^(?P<kind>[A-Z]{1,4})-(?P<num>\d+(?:\.\d+)*)(?![\w.])\s*(?:[:.)]|[-\u2013\u2014]+)?\s*"
    r"(?P<title>.*)$"
)
#: a heading that is one task, not a unit: Step 4, Task 2, Steps 12-16
TASK_TITLE = re.compile(
    r"(?i)^(?P<kind>steps?|tasks?)\s*(?P<num>\d+)(?:\s*[-\u2013\u2014]\s*\d+)?(?![\w.])"
    r"\s*(?:[:.)]|[-\u2013\u2014]+)?\s*(?P<title>.*)$"
)
_STANDALONE_TITLE = re.compile(r"^[A-Z][\w&/' ]{2,48}$")


def blank_front_matter(text: str) -> str:
    """YAML front matter (`---` ... `---` at the top) becomes blank lines."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return text
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            return "\n".join([""] * (end + 1) + lines[end + 1 :])
    return text


def unbox(text: str) -> tuple[str, bool]:
    """A paste from a terminal box (`│ text │` between `╭───╮` borders) as plain lines."""
    lines = text.split("\n")
    boxed = [i for i, ln in enumerate(lines) if _UNICODE_VERTICAL.match(ln)]
    if len(boxed) < 3:
        return text, False
    inner: dict[int, str] = {}
    for i, line in enumerate(lines):
        if _BORDER.match(line) and line.strip() and set(line.strip()) - set("-+|"):
            inner[i] = ""
        elif (m := _BOX_LINE.match(line)) and _UNICODE_VERTICAL.match(line):
            inner[i] = m.group("inner").rstrip()
    indents = [len(s) - len(s.lstrip()) for s in inner.values() if s.strip()]
    cut = min(indents, default=0)
    for i, content in inner.items():
        lines[i] = content[cut:] if content.strip() else ""
    return "\n".join(lines), True


def title_kind(title: str) -> tuple[str, str, str] | None:
    """(kind, number, rest) of a unit title like `Phase 03.5 — Parser`, else None."""
    for pattern in (UNIT_TITLE, CODE_TITLE):
        m = pattern.match(title.strip())
        if m:
            kind = m.group("kind").lower()
            if pattern is UNIT_TITLE and len(kind) > 2 and kind.endswith("s"):
                kind = kind[:-1]
            return kind, m.group("num"), m.group("title")
    return None


def promote_lines(text: str, matches: Callable[[str], bool] | None = None) -> str | None:
    """Heading-less plans (pasted, plain text): stand-alone unit lines become headings.

    `Phase 1: Foundation` and `WS-01: Indexer` alone on their lines become `##` and `###`: the
    kind seen first is the outer one. Short stand-alone title lines (`Execution Summary`)
    become headings at the outer level, so they end the unit before them. Returns None when
    no line looks like a unit.
    """
    lines = text.split("\n")
    levels: dict[str, int] = {}
    found: dict[int, int] = {}
    for i, raw in enumerate(lines):
        line = raw.strip()
        before = lines[i - 1].strip() if i else ""
        after = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if not line or (before and before != "---") or after.startswith(("-", "=")):
            continue
        if matches is not None:
            if matches(line):
                found[i] = 2
            continue
        kind = title_kind(line)
        titled = re.match(r"^[^\d]*?\d+(?:\.\d+)*\s*([:)\-\u2013\u2014]|$)", line)
        if kind and titled and not line.startswith(("#", "-", "*")):
            level = levels.setdefault(kind[0], min(2 + len(levels), 6))
            found[i] = level
    if not found:
        return None
    if matches is None:
        for i, raw in enumerate(lines):
            line = raw.strip()
            before = lines[i - 1].strip() if i else ""
            after = lines[i + 1].strip() if i + 1 < len(lines) else ""
            standalone = not after and (not before or before == "---")
            if i not in found and standalone and _STANDALONE_TITLE.match(line):
                found[i] = 2
    for i, level in found.items():
        lines[i] = "#" * level + " " + lines[i].strip()
    return "\n".join(lines)
