"""What a reviewer is shown: the files steps made, or a step's change as a diff, capped.

The text goes in the prompt (one argument of the CLI, so it is kept well under the 128 KiB
a single argument may hold); the files themselves are in the reviewer's folder.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from uet_doit.bundle.model import Step
from uet_doit.errors import UetError

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


def made_by(step: Step) -> tuple[str, ...]:
    """What a step made or edited: its outputs, else its inputs (a step editing in place)."""
    return tuple(step.context.create_files) or tuple(step.context.files)


def _landed_diffs(root: Path, step_ids: set[str]) -> dict[str, str]:
    """The change each step landed on the checked-out branch (isolated steps), by step."""
    # lazy: start-up time
    from uet_doit.run.workspaces.provenance import landings, repository, step_commits

    try:
        found = landings(step_commits(root))
        repo = repository(root)
    except UetError:
        return {}  # not a git repository: the files tell what the steps made
    return {
        step_id: repo.run("show", "--format=", "--patch", commit.sha).out
        for step_id, commit in found.items()
        if step_id in step_ids
    }


def criterion_material(steps: Sequence[Step], root: Path) -> tuple[str, tuple[str, ...]]:
    """A criterion's material (its scope's steps, each with the change it landed, else the
    files it made as they are now) and the files a reviewer gets copies of."""
    diffs = _landed_diffs(root, {s.step_id for s in steps})
    parts: list[str] = []
    for step in steps:
        parts.append(f"## Step {step.step_id}\nAsked: {step.instruction}")
        if step.step_id in diffs:
            parts.append("Landed change:\n" + _capped(diffs[step.step_id], FILE_CHARS))
        else:
            parts.extend(_file_sections(made_by(step), root))
    copies = tuple(dict.fromkeys(p for s in steps for p in made_by(s)))
    return _capped("\n\n".join(parts), MATERIAL_CHARS), copies
