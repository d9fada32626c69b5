"""What a reviewer is shown: the files steps made, or a step's change as a diff, capped.

The text goes in the prompt (one argument of the CLI, so it is kept well under the 128 KiB
a single argument may hold); the files themselves are in the reviewer's folder.
"""

from __future__ import annotations

import difflib
from pathlib import Path

MATERIAL_CHARS = 40_000
FILE_CHARS = 12_000


def _capped(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters; the whole file is there]"


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _file_sections(paths: tuple[str, ...], root: Path) -> list[str]:
    sections = []
    for rel in paths:
        text = _text(root / rel)
        shown = "(does not exist)" if text is None else _capped(text, FILE_CHARS)
        sections.append(f"### {rel}\n{shown}")
    return sections


def files_material(sections: list[tuple[str, str, tuple[str, ...]]], root: Path) -> str:
    """Steps (id, instruction, files) with the files as they are now in `root`."""
    parts: list[str] = []
    for step_id, instruction, paths in sections:
        parts.append(f"## Step {step_id}\nAsked: {instruction}")
        parts.extend(_file_sections(paths, root))
    return _capped("\n\n".join(parts), MATERIAL_CHARS)


def change_material(paths: tuple[str, ...], before: Path, after: Path) -> str:
    """The step's change: a unified diff per file from `before` to `after` (the attempt's
    tree); in place (the same folder) the files as the step left them."""
    if before.resolve() == after.resolve():
        left = ["The step's files as it left them:", *_file_sections(paths, after)]
        return _capped("\n\n".join(left), MATERIAL_CHARS)
    parts: list[str] = []
    for rel in paths:
        old, new = _text(before / rel), _text(after / rel)
        if old == new:
            continue
        diff = difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            (new or "").splitlines(keepends=True),
            fromfile=f"a/{rel}" if old is not None else "/dev/null",
            tofile=f"b/{rel}" if new is not None else "/dev/null",
        )
        parts.append(_capped("".join(diff), FILE_CHARS))
    return _capped("\n".join(parts), MATERIAL_CHARS) or "(the step changed none of its files)"
