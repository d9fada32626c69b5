"""The lines of a markdown plan that the checklist dialects are made of: headings, checkbox
items (with their mark and indent), and the text under each, outside fenced code."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from uet_doit.plans.dialects.model import outside_fences

_HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.*?)\s*#*\s*$")
_CHECK = re.compile(
    r"^(?P<indent>\s*)(?:[-*+]|\d+[.)])\s+\[(?P<mark>[ xX~\-/>!?])\](?P<star>\*?)\s*(?P<text>.*)$"
)
_BULLET = re.compile(r"^(?P<indent>\s*)(?P<bullet>[-*+]|\d+[.)])\s+(?P<text>.*)$")
#: checkbox marks: `[x]` done, `[-]`/`[~]`/`[/]` started, `[>]` deferred, `[!]` blocked
MARKS: dict[str, str | None] = {
    "x": "done",
    "X": "done",
    "-": "in-progress",
    "~": "in-progress",
    "/": "in-progress",
}
MARKS |= {">": "deferred", "!": "blocked", "?": None, " ": None}


@dataclass
class Entry:
    """A heading, a checkbox item or a plain bullet, with the lines under it."""

    kind: str  # heading | check | bullet
    line: int
    text: str
    indent: int = 0
    level: int = 0  # heading level
    mark: str = " "
    star: bool = False  # Kiro `- [ ]*`: optional
    raw: str = ""
    body: list[tuple[int, str]] = field(default_factory=list)  # (line, text) under it

    @property
    def status(self) -> str | None:
        return MARKS.get(self.mark)


def entries(text: str, bullets: bool = False) -> list[Entry]:
    """Headings and checkbox items (and plain bullets when `bullets`) in order; every other
    line goes into the body of the entry before it."""
    out: list[Entry] = []
    for number, line in outside_fences(text.replace("\r\n", "\n")):
        if m := _HEADING.match(line):
            out.append(Entry("heading", number, m.group("title"), level=len(m.group("hashes"))))
        elif m := _CHECK.match(line):
            indent = len(m.group("indent").replace("\t", "    "))
            entry = Entry("check", number, m.group("text").strip(), indent, mark=m.group("mark"))
            entry.star, entry.raw = bool(m.group("star")), line
            out.append(entry)
        elif bullets and (m := _BULLET.match(line)):
            indent = len(m.group("indent").replace("\t", "    "))
            out.append(Entry("bullet", number, m.group("text").strip(), indent, raw=line))
        elif out:
            out[-1].body.append((number, line))
    return out


def body_text(lines: list[tuple[int, str]]) -> list[str]:
    """The body lines without the blank ones at either end, dedented."""
    texts = [t for _, t in lines]
    while texts and not texts[0].strip():
        texts.pop(0)
    while texts and not texts[-1].strip():
        texts.pop()
    cut = min((len(t) - len(t.lstrip()) for t in texts if t.strip()), default=0)
    return [t[cut:] for t in texts]


def checkbox_sync(entry: Entry) -> dict[str, object]:
    """Where `--sync-plan` ticks a checkbox item: its line and the text it had."""
    return {"kind": "checkbox", "line": entry.line, "text": entry.raw}
