"""Semantic checks a schema cannot express, all reported in one go."""

from __future__ import annotations

import difflib
import itertools
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uet_doit.bundle.effective import effective_review, effective_tool, explicit_isolation
from uet_doit.bundle.graph import build_graph, normalise_path
from uet_doit.bundle.model import Bundle, Step
from uet_doit.errors import Problem


def _did_you_mean(name: str, choices: list[str], itself: str | None = None) -> str | None:
    """The closest choice; never `itself` (a step's missing dependency is not the step)."""
    options = [c for c in choices if c != itself] if itself is not None else choices
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


class _Suggestions:
    """Did-you-mean hints for the first few misses only: each compares the name with every
    id, so a hint per miss made a bundle of thousands of misses quadratic."""

    LIMIT = 20

    def __init__(self, choices: set[str]) -> None:
        self.choices = choices
        self._sorted: list[str] | None = None
        self._left = self.LIMIT

    def hint(self, name: str, itself: str) -> str | None:
        if self._left <= 0:
            return None
        self._left -= 1
        if self._sorted is None:
            self._sorted = sorted(self.choices)
        return _did_you_mean(name, self._sorted, itself)


#: uet's, doit's and git's own state: a step that reads or writes there can corrupt a run's
#: records, doit's up-to-date checks or the repository (first path component, any case)
STATE_DIRS = (".uet", ".git")
STATE_FILE_PREFIX = ".doit.db"


def state_area(path: str) -> str | None:
    """The state `path` lies in (`.git/`, `.uet/`, `.doit.db*`), else None (`a/../.git/x` too)."""
    lowered = path.lower()
    if ".uet" not in lowered and ".git" not in lowered and STATE_FILE_PREFIX not in lowered:
        return None  # the common case, without normalising
    first = normalise_path(path).split("/", 1)[0].lower()
    if first in STATE_DIRS:
        return f"{first}/"
    return f"{STATE_FILE_PREFIX}*" if first.startswith(STATE_FILE_PREFIX) else None


def _state_message(area: str) -> str:
    owner = "doit" if area.startswith(STATE_FILE_PREFIX) else area[1:-1]
    return f"{area}, where {owner} keeps its own state"


def _field_path(raw: Any, wi: int, si: int, key: str) -> str:
    """Where the user wrote a context key: at step level or inside `context`."""
    base = f"workstreams[{wi}].steps[{si}]"
    try:
        step_raw = raw["workstreams"][wi]["steps"][si]
    except (KeyError, IndexError, TypeError):
        return f"{base}.context.{key}"
    if isinstance(step_raw, dict) and key in step_raw:
        return f"{base}.{key}"
    return f"{base}.context.{key}"


class PathChecker:
    """Is a path inside the project root? Symlinks resolved, with each folder's real path
    computed once (a 10k-step bundle names few folders but many files)."""

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self._real_dirs: dict[str, str] = {}

    def _real_dir(self, rel_dir: str) -> str:
        real = self._real_dirs.get(rel_dir)
        if real is None:
            real = self._real_dirs[rel_dir] = os.path.realpath(os.path.join(self.root, rel_dir))
        return real

    def partition(self, paths: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
        """The paths that may be used, and the others with why not (for plan converters,
        which leave out what `uet validate` would refuse)."""
        kept: list[str] = []
        refused: list[tuple[str, str]] = []
        for path in paths:
            why = self.problem(path)
            if why is None:
                kept.append(path)
            else:
                refused.append((path, why))
        return kept, refused

    def problem(self, path: str) -> str | None:
        """Why `path` may not be used (absolute, or outside the project root), else None."""
        if not path.strip():
            return "an empty path"
        if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
            return f"{path!r} is absolute; paths are relative to the project root"
        folder, name = os.path.split(path.rstrip("/"))
        target = os.path.join(self._real_dir(folder), name)
        if name in ("..", ".") or os.path.islink(target):
            target = os.path.realpath(target)
        if target != self.root and not target.startswith(self.root + os.sep):
            return f"{path!r} leaves the project root ({self.root})"
        area = state_area(path)
        if area:
            return f"{path!r} is in {_state_message(area)}"
        # the real path too: `notes -> .git` is git's state under another name
        area = state_area(target[len(self.root) + 1 :])
        return f"{path!r} leads (through a symlink) into {_state_message(area)}" if area else None


@dataclass(frozen=True)
class KnownTools:
    """The tools a bundle may name here, and which of them can review, as the layer that
    knows the adapters says (tools/routing.py: default_known_tools): the bundle knows none."""

    names: frozenset[str]
    reviewers: frozenset[str]

    def stamp(self) -> str:
        """What a kept validation depends on: installing a tool changes it."""
        return ",".join(sorted(self.names)) + ";" + ",".join(sorted(self.reviewers))


def check_bundle(
    bundle: Bundle,
    raw: Any,
    name: str,
    root: Path,
    known_tools: KnownTools,
) -> list[Problem]:
    """Every problem of `bundle` in project `root`; `known_tools` are the tools this
    installation has (tools/routing.py: default_known_tools)."""
    problems: list[Problem] = []

    def add(where: str, message: str, hint: str | None = None) -> None:
        problems.append(Problem(name, where, message, hint))

    tools = known_tools.names
    ws_ids = [ws.ws_id for ws in bundle.workstreams]
    step_ids = [s.step_id for _, s in bundle.steps()]
    ws_counts, step_counts = Counter(ws_ids), Counter(step_ids)
    # built once: a set per workstream made 60k workstreams take minutes
    known_ws = _Suggestions(set(ws_counts))
    all_ids = _Suggestions(known_ws.choices | set(step_counts))
    creators: dict[str, tuple[str, str]] = {}
    paths = PathChecker(root)

    for wi, ws in enumerate(bundle.workstreams):
        wpath = f"workstreams[{wi}]"
        if ws_counts[ws.ws_id] > 1:
            add(
                f"{wpath}.ws_id", f"duplicate ws_id {ws.ws_id!r}", "give each workstream its own id"
            )
        if ws.ws_id in step_counts:
            add(
                f"{wpath}.ws_id",
                f"ws_id {ws.ws_id!r} is also a step_id",
                "ids name doit tasks: keep them unique",
            )
        _check_depends_on(add, wpath, "workstream", ws.ws_id, ws.depends_on, known_ws)
        if not ws.steps:
            add(f"{wpath}.steps", "a workstream needs at least one step (or `tasks`)")
        for si, step in enumerate(ws.steps):
            spath = f"{wpath}.steps[{si}]"
            if step_counts[step.step_id] > 1:
                add(
                    f"{spath}.step_id",
                    f"duplicate step_id {step.step_id!r}",
                    "give each step its own id",
                )
            _check_depends_on(add, spath, "step", step.step_id, step.depends_on, all_ids)
            _check_tool(add, spath, bundle, ws, step, tools)
            for key in ("files", "create_files"):
                for fi, path in enumerate(getattr(step.context, key)):
                    why = paths.problem(path)
                    if why:
                        hint = (
                            "steps may not touch .uet/, .git/ or .doit.db*: name the project "
                            "files the step works on"
                            if why.endswith("its own state")
                            else "use a path relative to the project root, inside it"
                        )
                        add(f"{_field_path(raw, wi, si, key)}[{fi}]", why, hint)
            for fi, path in enumerate(step.context.create_files):
                norm = normalise_path(path)
                if norm in creators and creators[norm][0] != step.step_id:
                    other = creators[norm][0]
                    add(
                        f"{_field_path(raw, wi, si, 'create_files')}[{fi}]",
                        f"{path!r} is also created by step {other!r}",
                        "one file, one creating step: let the later step list it in `files`",
                    )
                creators.setdefault(norm, (step.step_id, ws.ws_id))
    _check_reviewers(add, bundle, known_tools)
    problems.extend(_check_isolation(bundle, name, root))
    if not problems:
        graph = build_graph(bundle)
        cycle = graph.find_cycle()
        if cycle:
            add(
                _closing_edge(bundle, raw, cycle),
                "dependency cycle: " + " -> ".join(cycle),
                "remove one of these dependencies (a step that reads a file another step "
                "creates depends on it)",
            )
    return problems


def _closing_edge(bundle: Bundle, raw: Any, cycle: list[str]) -> str:
    """Where the bundle says the last edge of `cycle` that it spells out: the `depends_on`
    entry (or the `files` entry of an implied edge) that closes the loop."""
    places: dict[tuple[str, str], str] = {}
    creators = {
        normalise_path(p): s.step_id for _, s in bundle.steps() for p in s.context.create_files
    }
    for wi, ws in enumerate(bundle.workstreams):
        for di, dep in enumerate(ws.depends_on):
            places.setdefault((ws.ws_id, dep), f"workstreams[{wi}].depends_on[{di}]")
            for step in ws.steps:
                places.setdefault((step.step_id, dep), f"workstreams[{wi}].depends_on[{di}]")
        for si, step in enumerate(ws.steps):
            for di, dep in enumerate(step.depends_on):
                places[(step.step_id, dep)] = f"workstreams[{wi}].steps[{si}].depends_on[{di}]"
            for fi, path in enumerate(step.context.files):
                creator = creators.get(normalise_path(path))
                if creator is not None:
                    where = f"{_field_path(raw, wi, si, 'files')}[{fi}]"
                    places.setdefault((step.step_id, creator), where)
    for node, dep in reversed(list(itertools.pairwise(cycle))):
        if (node, dep) in places:
            return places[(node, dep)]
    return "depends_on"


def missing_inputs(
    bundle: Bundle, root: Path, skip: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """(step_id, path) of inputs absent from disk that no step of the bundle creates: the
    step would fail for want of them (`uet validate` warns, `uet run` warns at start)."""
    created = {normalise_path(p) for _, s in bundle.steps() for p in s.context.create_files}
    return [
        (step.step_id, path)
        for _, step in bundle.steps()
        if step.step_id not in skip
        for path in step.context.files
        if normalise_path(path) not in created and not (root / path).exists()
    ]


def _check_depends_on(
    add: Any, where: str, kind: str, own_id: str, deps: list[str], known: _Suggestions
) -> None:
    """Each dependency names something that exists, and not the item itself."""
    for di, dep in enumerate(deps):
        if dep not in known.choices:
            add(
                f"{where}.depends_on[{di}]",
                f"depends on unknown {kind} {dep!r}",
                known.hint(dep, own_id),
            )
        elif dep == own_id:
            add(f"{where}.depends_on[{di}]", f"{kind} {dep!r} depends on itself")


def _check_tool(
    add: Any, spath: str, bundle: Bundle, ws: Any, step: Step, tools: frozenset[str]
) -> None:
    tool = effective_tool(bundle, ws, step)
    if tool not in tools:
        hint = _did_you_mean(tool, sorted(tools)) or (
            f"known tools: {', '.join(sorted(tools))}; custom tools go in router_config.json "
            "`custom_adapters`"
        )
        add(f"{spath}.tool_profile_id", f"unknown tool {tool!r}", hint)
    elif tool == "shell" and not step.context.command:
        add(
            f"{spath}.context.command",
            "a shell step needs `command`",
            'e.g. "command": ["python", "scripts/build.py"]',
        )
    elif tool == "python" and not step.context.callable:
        add(
            f"{spath}.context.callable",
            "a python step needs `callable`",
            'e.g. "callable": "mypkg.tasks:build"',
        )


def _check_reviewers(add: Any, bundle: Bundle, tools: KnownTools) -> None:
    """Each `review` names an AI tool uet knows, here or at a level above it."""
    levels: list[tuple[str, Any, Any, Any]] = [("review", bundle.review, None, None)]
    for wi, ws in enumerate(bundle.workstreams):
        levels.append((f"workstreams[{wi}].review", ws.review, ws, None))
        levels += [
            (f"workstreams[{wi}].steps[{si}].review", st.review, ws, st)
            for si, st in enumerate(ws.steps)
        ]
    for where, review, ws, step in levels:
        if review is None:
            continue
        tool = review.tool
        if tool is not None and tool not in tools.reviewers:
            reviewers = sorted(tools.reviewers)
            hint = _did_you_mean(tool, reviewers) or f"reviewers: {', '.join(reviewers)}"
            add(f"{where}.tool", f"{tool!r} cannot review", hint)
        elif effective_review(bundle, ws, step) is None:
            add(
                where,
                "`review` names no tool here or at a level above",
                'name the reviewer, e.g. "review": {"tool": "claude"}',
            )


def in_git_repository(root: Path) -> bool:
    """Is `root` inside a git work tree? (`.git` is a folder, or a file in a worktree.)"""
    here = Path(os.path.realpath(root))
    return any((folder / ".git").exists() for folder in (here, *here.parents))


def _check_isolation(bundle: Bundle, name: str, root: Path) -> list[Problem]:
    """`isolation: worktree` needs a git repository; said once, where it is set."""
    wanting = [
        (wi, si, ws, step)
        for wi, ws in enumerate(bundle.workstreams)
        for si, step in enumerate(ws.steps)
        if explicit_isolation(bundle, ws, step) == "worktree"
    ]
    if not wanting or in_git_repository(root):
        return []
    wi, si, ws, step = wanting[0]
    if step.isolation == "worktree":
        where = f"workstreams[{wi}].steps[{si}].isolation"
    elif ws.isolation == "worktree":
        where = f"workstreams[{wi}].isolation"
    else:
        where = "isolation"
    return [
        Problem(
            name,
            where,
            f"isolation `worktree` needs a git repository, and {root} is not in one",
            "run `git init` (and commit) in the project, or set `isolation: none`",
        )
    ]
