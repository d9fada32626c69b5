"""`uet convert` for plans written in a known dialect (spec-kit, Task Master, Beads, ...):
detect it, read it as that dialect says, build the bundle, check it like `uet validate`.

A folder of one-task-per-file plans (Backlog.md `backlog/tasks/`, spec-kitty
`kitty-specs/<mission>/tasks/`) is read file by file into one plan, so the dependencies
between the files are kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uet_doit.bundle.checks import check_bundle
from uet_doit.bundle.loader import read_data
from uet_doit.errors import BundleError, UsageError
from uet_doit.plans import dialects
from uet_doit.plans.convert import check_bundle as check_model
from uet_doit.plans.dialects.build import Trace, build, settle
from uet_doit.plans.dialects.model import PlanDoc
from uet_doit.plans.plan_markdown import slug
from uet_doit.tools.routing import default_known_tools

#: file names too generic to name a bundle: the folder they are in is added
_GENERIC = frozenset(
    [
        "tasks",
        "plan",
        "issues",
        "implementation_plan",
        "todo",
        "readme",
        "story",
        "progress",
        "spec",
    ]
)


@dataclass
class DialectConversion:
    """The bundle (checked), what could not be placed, the --explain tree, the dialect and
    why it was recognised, and the files read."""

    bundle: dict[str, Any]
    warnings: list[str]
    traces: list[Trace]
    detected: dialects.Detected
    files: list[str] = field(default_factory=list)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", "check the path") from exc


def pick(path: Path, text: str, name: str | None) -> dialects.Detected | None:
    """The dialect of a plan: forced by `--dialect`, else detected (None: generic markdown)."""
    if name == "markdown":
        return None
    if name:
        return dialects.forced(name)
    return dialects.detect(path, text)


def _folder(path: Path, name: str | None) -> tuple[dialects.Detected, list[Path]]:
    """The dialect of the task files in a folder, and those files (in name order)."""
    # older spec-kitty keeps work packages in lane folders (tasks/planned/, tasks/done/, ...)
    files = sorted(p for p in path.rglob("*.md") if p.is_file())
    seen = [(f, pick(f, read_text(f), name)) for f in files]
    per_file = [(f, d) for f, d in seen if d is not None and getattr(d.module, "PER_FILE", False)]
    if not per_file:
        raise UsageError(
            f"{path} is a folder with no task files uet reads one per file",
            "give a plan file, or a Backlog.md `backlog/tasks/` or spec-kitty `tasks/` folder",
        )
    first = per_file[0][1]
    return first, [f for f, d in per_file if d.name == first.name]


def _read(path: Path, name: str | None) -> tuple[dialects.Detected, PlanDoc, list[Path]]:
    if path.is_dir():
        found, files = _folder(path, name)
        merge = getattr(found.module, "merge", None)
        docs = [
            _located(found.read(read_text(f), f.relative_to(path).as_posix()), f) for f in files
        ]
        doc = merge(docs) if merge else docs[0]
        return found, doc, files
    text = read_text(path)
    one = pick(path, text, name)
    if one is None:
        raise UsageError(f"{path}: no dialect recognised", "give --dialect NAME")
    return one, _located(one.read(text, path.name), path), [path]


def _located(doc: PlanDoc, path: Path) -> PlanDoc:
    """Each item's `--sync-plan` place names its file, as given to `uet convert`."""
    for group in doc.groups:
        if isinstance(group.metadata.get("source_item"), dict):
            group.metadata["source_item"]["file"] = path.as_posix()
        for item in group.items:
            if item.sync is not None:
                item.sync["file"] = path.as_posix()
    return doc


def _keep(previous: str | None) -> dict[str, str]:
    """`--update`: the ids an earlier conversion gave each source item."""
    if previous is None or not Path(previous).is_file():
        return {}

    data, _ = read_data(Path(previous))
    keep: dict[str, str] = {}
    for ws in data.get("workstreams", []) if isinstance(data, dict) else []:
        if not isinstance(ws, dict):
            continue
        if isinstance(ws.get("metadata"), dict) and "source_id" in ws["metadata"]:
            keep[f"group:{ws['metadata']['source_id']}"] = ws["ws_id"]
        for step in ws.get("steps", []):
            meta = step.get("metadata") if isinstance(step, dict) else None
            if isinstance(meta, dict) and "source_id" in meta:
                keep[f"item:{meta['source_id']}"] = step["step_id"]
    return keep


def bundle_id_for(path: Path) -> str:
    """From the file name; `specs/007-auth/tasks.md` is `007-auth-tasks`."""
    stem = path.stem if path.is_file() else path.name
    if stem.lower().removesuffix(".plan") in _GENERIC or len(stem) < 4:
        stem = f"{path.resolve().parent.name}-{stem}"
    return slug(stem, 60)


def convert_dialect(
    path: Path,
    *,
    dialect: str | None = None,
    tool: str | None = None,
    bundle_id: str | None = None,
    update: str | None = None,
) -> DialectConversion:
    """The bundle (checked like `uet validate`) made from a plan in a known dialect."""
    found, doc, files = _read(path, dialect)
    if not any(g.items for g in doc.groups):
        raise UsageError(
            f"{path}: read as {found.title}, but it has no items",
            "check the file, or give --dialect markdown to read it as a generic plan",
        )
    built = build(doc, _keep(update))
    bundle: dict[str, Any] = {
        "bundle_id": bundle_id or bundle_id_for(path),
        "bundle_name": (doc.title or path.stem)[:200],
    }
    if tool:
        bundle["tool_profile_id"] = tool
    bundle["workstreams"] = built.workstreams
    digest = {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    bundle["metadata"] = {
        "converted_from": str(path),
        "dialect": found.name,
        "recognised_by": found.reason,
        "source_sha256": digest,
        **doc.metadata,
    }
    warnings = doc.warnings + built.warnings
    settle(bundle, warnings)
    _check(bundle, str(path))
    return DialectConversion(bundle, warnings, built.traces, found, [str(f) for f in files])


def _check(bundle: dict[str, Any], source: str) -> None:
    """The checks `uet validate` makes, so a converted bundle always passes it."""
    model = check_model(bundle, source)
    problems = check_bundle(model, bundle, source, Path.cwd(), default_known_tools())
    if problems:
        raise BundleError(problems)


def reads_as_dialect(
    path: Path, dialect: str | None, *, markdown_options: bool = False, with_tool: bool = False
) -> bool:
    """Whether `uet convert` reads the plan as a known dialect (or a folder of task files);
    False for a generic markdown plan, which plans.convert reads. Options only the markdown
    reader knows (`markdown_options`) or an AI draft (`with_tool`) mean markdown."""
    if with_tool or (markdown_options and not dialect) or dialect == "markdown":
        return False
    return path.is_dir() or pick(path, read_text(path), dialect) is not None
