"""`uet run --sync-plan`: mark done, in the plan a bundle was converted from, the items whose
steps succeeded: `- [ ]` becomes `- [x]`, Task Master's `"status"` becomes `"done"`, a Beads
issue `closed`, a Backlog.md `status:` `Done`. Only that mark changes, byte for byte; an item
that is no longer what it was when converted is reported, never overwritten.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uet_doit.bundle.model import Bundle
from uet_doit.state.records import StepState
from uet_doit.state.store import RunStore


class Changed(Exception):
    """The item is not where, or not what, it was at conversion."""


@dataclass
class SyncReport:
    ticked: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # "step: why"
    unmarked: list[str] = field(default_factory=list)  # landed, but the plan has no box for it

    def lines(self) -> list[str]:
        out = []
        if self.ticked:
            out.append(f"sync-plan: marked done in the plan: {', '.join(self.ticked)}")
        for why in self.changed:
            out.append(f"sync-plan: not marked (the plan changed since conversion): {why}")
        if self.unmarked:
            out.append(
                "sync-plan: left as is (no checkbox in the plan to tick): "
                + ", ".join(self.unmarked)
            )
        return out


_BOX = re.compile(r"^(?P<head>\s*(?:[-*+]|\d+[.)])\s+\[)(?P<mark>[ \-~/])(?P<tail>\].*)$")
_TICKED = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[[xX]\]")


def _tick_line(lines: list[str], number: int, original: str) -> bool:
    """Tick the checkbox of the line that reads `original` (at `number`, else the one line
    that does); False when it is ticked already."""
    index = number - 1
    body = [ln.rstrip("\r\n") for ln in lines]
    if not (0 <= index < len(body) and body[index] == original):
        same = [i for i, ln in enumerate(body) if ln == original]
        if len(same) != 1:
            ticked = _BOX.sub(lambda m: m["head"] + "x" + m["tail"], original)
            if 0 <= index < len(body) and body[index] in (ticked, original.replace("[ ]", "[X]")):
                return False
            raise Changed(f"line {number} is no longer {original.strip()[:60]!r}")
        index = same[0]
    m = _BOX.match(body[index])
    if not m:
        if _TICKED.match(body[index]):
            return False
        raise Changed(f"line {index + 1} has no checkbox")
    ending = lines[index][len(body[index]) :]
    lines[index] = m["head"] + "x" + m["tail"] + ending
    return True


# JSON: the span of one value, so only that value is rewritten
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SCALAR = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")


def _ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _skip(text: str, i: int) -> int:
    """The index after the JSON value that starts at `i` (whitespace before it allowed)."""
    i = _ws(text, i)
    if text.startswith(("{", "["), i):
        after = i + 1
        if text[i] == "{":
            for _, _, end in _members(text, i):
                after = end
        else:
            for _, end in _elements(text, i):
                after = end
        close = _ws(text, after)
        if text.startswith(",", close):  # not valid JSON, but never read past it
            close = _ws(text, close + 1)
        return close + 1
    m = _STRING.match(text, i) or _SCALAR.match(text, i)
    if not m:
        raise Changed(f"not JSON at character {i}")
    return m.end()


def _members(text: str, i: int) -> Iterator[tuple[str, int, int]]:
    """(key, value start, value end) of the object at `i`."""
    i = _ws(text, i) + 1
    while True:
        i = _ws(text, i)
        if text.startswith("}", i):
            return
        key = _STRING.match(text, i)
        if not key:
            raise Changed(f"not JSON at character {i}")
        colon = _ws(text, key.end())
        start = _ws(text, colon + 1)
        end = _skip(text, start)
        yield json.loads(key.group()), start, end
        i = _ws(text, end)
        if text.startswith(",", i):
            i += 1


def _elements(text: str, i: int) -> Iterator[tuple[int, int]]:
    i = _ws(text, i) + 1
    while True:
        i = _ws(text, i)
        if text.startswith("]", i):
            return
        end = _skip(text, i)
        yield i, end
        i = _ws(text, end)
        if text.startswith(",", i):
            i += 1


def _set_status(text: str, pointer: list[Any], wanted_id: Any, value: str) -> str | None:
    """`text` with the `status` of the object at `pointer` set to `value`; None when it is
    already; Changed when the object there is not the one with `wanted_id`."""
    i = _ws(text, 0)
    for part in pointer:
        found = None
        if isinstance(part, int):
            found = next((s for n, (s, _) in enumerate(_elements(text, i)) if n == part), None)
        else:
            found = next((s for k, s, _ in _members(text, i) if k == part), None)
        if found is None:
            raise Changed(f"nothing at {'/'.join(map(str, pointer))}")
        i = found
    members = {k: (s, e) for k, s, e in _members(text, i)}
    if "id" in members and json.loads(text[slice(*members["id"])]) != wanted_id:
        raise Changed(f"the item at {'/'.join(map(str, pointer))} is no longer id {wanted_id}")
    if "status" not in members:
        raise Changed(f"the item {wanted_id} has no status")
    start, end = members["status"]
    if json.loads(text[start:end]) == value:
        return None
    return text[:start] + json.dumps(value) + text[end:]


def _front_matter_field(lines: list[str], name: str, value: str, after_id: str | None) -> bool:
    """Set `name: value` in the front matter (in the todo `id: after_id` when given)."""
    if not lines or lines[0].strip() != "---":
        raise Changed("the front matter is gone")
    inside = False
    for i in range(1, len(lines)):
        text = lines[i].rstrip("\r\n")
        if text.strip() in ("---", "..."):
            break
        if after_id is not None and re.match(
            rf"^\s*-?\s*id:\s*['\"]?{re.escape(after_id)}['\"]?\s*$", text
        ):
            inside = True
            continue
        if after_id is not None and inside and re.match(r"^\s*-\s", text):
            break
        if (after_id is None or inside) and (
            m := re.match(rf"^(\s*-?\s*{name}:\s*)(.*?)\s*$", text)
        ):
            if m.group(2).strip("'\"") == value:
                return False
            lines[i] = m.group(1) + value + lines[i][len(text) :]
            return True
    raise Changed(f"no `{name}:` for {after_id or 'the task'} in the front matter")


def _apply(text: str, where: dict[str, Any]) -> str | None:
    """The plan text with one item marked done; None when it is marked already."""
    kind = where.get("kind")
    lines = text.splitlines(keepends=True)
    if kind == "checkbox":
        changed = _tick_line(lines, int(where["line"]), str(where["text"]))
    elif kind == "checkboxes":
        changed = False
        for number, original in zip(where["lines"], where["texts"], strict=False):
            changed = _tick_line(lines, int(number), str(original)) or changed
    elif kind == "json":
        return _set_status(text, list(where["pointer"]), where.get("id"), str(where["done"]))
    elif kind == "jsonl":
        index = int(where["line"]) - 1
        if not 0 <= index < len(lines):
            raise Changed(f"line {where['line']} is gone")
        new = _set_status(lines[index], [], where.get("id"), str(where["done"]))
        if new is None:
            return None
        lines[index] = new
        changed = True
    elif kind == "frontmatter":
        changed = _front_matter_field(lines, str(where["field"]), str(where["done"]), None)
    elif kind == "cursor-todo":
        changed = _front_matter_field(lines, "status", "completed", str(where["id"]))
    else:
        raise Changed(f"cannot mark a {kind!r} item")
    return "".join(lines) if changed else None


def sync_plan(bundle: Bundle, root: Path, done: set[str]) -> SyncReport:
    """Mark done the source items of the steps in `done`; one write per plan file."""
    report = SyncReport()
    by_file: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for _, step in bundle.steps():
        where = step.metadata.get("source_item")
        if step.step_id not in done or not isinstance(where, dict) or not where.get("file"):
            continue
        if where.get("kind") == "unmarked":  # a heading or plain item: nothing to tick
            at = f"{where['file']}:{where.get('line')}, {where.get('why', 'no checkbox')}"
            report.unmarked.append(f"{step.step_id} ({at})")
            continue
        by_file.setdefault(str(where["file"]), []).append((step.step_id, where))
    for ws in bundle.workstreams:  # a parent (Kiro `1.`, a Task Master task): when all are
        where = ws.metadata.get("source_item")
        finished = all(s.step_id in done or s.skip == "done" for s in ws.steps)
        landed = finished and any(s.step_id in done for s in ws.steps)
        if landed and isinstance(where, dict) and where.get("file"):
            by_file.setdefault(str(where["file"]), []).append((ws.ws_id, where))
    for name, items in by_file.items():
        path = root / name
        if not path.resolve().is_relative_to(root.resolve()):
            # a bundle only ever names the plan inside the project it was converted in
            report.changed += [
                f"{sid} ({name}: outside the project, not written)" for sid, _ in items
            ]
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            report.changed += [f"{sid} ({name}: {exc})" for sid, _ in items]
            continue
        bom = "\ufeff" if text.startswith("\ufeff") else ""  # convert read past it
        text = text[len(bom) :]
        before = text
        for step_id, where in items:
            try:
                new = _apply(text, where)
            except Changed as exc:
                report.changed.append(f"{step_id} ({name}: {exc})")
                continue
            if new is None:
                report.already.append(step_id)
            else:
                text = new
                report.ticked.append(step_id)
        if text != before:
            path.write_bytes((bom + text).encode("utf-8"))
    return report


def sync_after_run(bundle: Bundle, root: Path) -> SyncReport:
    """`--sync-plan`: the steps the latest run of the bundle finished (or found up to date)."""
    store = RunStore(root)
    run_id = store.latest_run_id(bundle.bundle_id)
    if run_id is None:
        return SyncReport()
    landed = {StepState.SUCCEEDED, StepState.UP_TO_DATE}
    done = {r.step_id for r in store.run_steps(run_id) if r.status in landed}
    return sync_plan(bundle, root, done)
