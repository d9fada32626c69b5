"""Semantic checks a schema cannot express, all reported in one go."""

from __future__ import annotations

import difflib
import itertools
import os
import stat
from collections import Counter
from pathlib import Path
from typing import Any

from uet_doit.bundle.effective import effective_review, effective_tool, explicit_isolation
from uet_doit.bundle.graph import build_graph, normalise_path
from uet_doit.bundle.known_tools import KnownTools
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
    computed once and each folder's symlinks learnt from one listing once it is asked about
    often (a 100k-step bundle names few folders but many files: an lstat per path was most
    of `uet validate`'s time); a folder that does not exist holds no symlink to look for."""

    #: paths of one folder checked with an lstat each before the folder is listed instead
    LIST_AFTER = 16

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self._real_dirs: dict[str, str] = {"": self.root}
        self._missing: set[str] = set()  # real folders that do not exist
        self._links: dict[str, frozenset[str] | None] = {}  # listed folder -> its symlinks
        self._asked: Counter[str] = Counter()
        self._verdicts: dict[str, str | None] = {}

    def _real_dir(self, rel_dir: str) -> str:
        """The real path of a folder, resolved one new component at a time (one lstat per
        folder; none below a folder known to be missing)."""
        chain: list[str] = []  # the folder and its ancestors not resolved yet, deepest first
        while rel_dir not in self._real_dirs:
            parent = os.path.dirname(rel_dir)
            if parent == rel_dir:  # "/" or "//": absolute paths are refused before this
                self._real_dirs[rel_dir] = os.path.realpath(os.path.join(self.root, rel_dir))
                break
            chain.append(rel_dir)
            rel_dir = parent
        above = self._real_dirs[rel_dir]
        for folder in reversed(chain):
            base = os.path.basename(folder)
            if base in ("", "."):
                real = above
            elif base == "..":
                real = os.path.dirname(above)  # `above` has no symlink left in it
            else:
                real = os.path.join(above, base)
                if above in self._missing:
                    self._missing.add(real)
                else:
                    real = self._step_into(real)
            self._real_dirs[folder] = above = real
        return above

    def _step_into(self, real: str) -> str:
        """`real` (its folder a real path) resolved, or noted as missing."""
        try:
            mode = os.lstat(real).st_mode
        except (FileNotFoundError, NotADirectoryError):
            self._missing.add(real)
            return real
        except OSError:  # cannot be looked at (permissions): as os.path.realpath says
            return os.path.realpath(real)
        return os.path.realpath(real) if stat.S_ISLNK(mode) else real

    def _is_link(self, folder: str, name: str) -> bool:
        """`folder/name` is a symlink (`folder` a real path): an lstat each for the first
        few names of a folder, then one listing of it."""
        if folder in self._missing:
            return False
        if folder not in self._links:
            self._asked[folder] += 1
            if self._asked[folder] <= self.LIST_AFTER:
                return os.path.islink(os.path.join(folder, name))
            self._links[folder] = _symlinks_in(folder)
        links = self._links[folder]
        if links is None:  # cannot be listed (no read permission): ask for each
            return os.path.islink(os.path.join(folder, name))
        return name in links

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
        if path not in self._verdicts:
            self._verdicts[path] = self._problem(path)
        return self._verdicts[path]

    def _problem(self, path: str) -> str | None:
        if not path.strip():
            return "an empty path"
        if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
            return f"{path!r} is absolute; paths are relative to the project root"
        folder, _, name = path.rstrip("/").rpartition("/")  # `a//b`: folder `a/`, same real
        real = self._real_dir(folder)
        target = f"{real}/{name}" if real != "/" else f"/{name}"
        if name in ("..", ".") or self._is_link(real, name):
            target = os.path.realpath(target)
        if target != self.root and not target.startswith(self.root + os.sep):
            return f"{path!r} leaves the project root ({self.root})"
        area = state_area(path)
        if area:
            return f"{path!r} is in {_state_message(area)}"
        # the real path too: `notes -> .git` is git's state under another name
        area = state_area(target[len(self.root) + 1 :])
        return f"{path!r} leads (through a symlink) into {_state_message(area)}" if area else None


def _symlinks_in(folder: str) -> frozenset[str] | None:
    """The names of the symlinks in a folder, from one listing; None when it cannot be
    listed (then each name is looked at on its own)."""
    try:
        with os.scandir(folder) as entries:
            return frozenset(e.name for e in entries if e.is_symlink())
    except (FileNotFoundError, NotADirectoryError):
        return frozenset()
    except OSError:
        return None


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

    problem = paths.problem
    # places are composed only for a problem: 100k workstreams are 200k f-strings otherwise
    for wi, ws in enumerate(bundle.workstreams):
        if ws_counts[ws.ws_id] > 1:
            add(
                f"workstreams[{wi}].ws_id",
                f"duplicate ws_id {ws.ws_id!r}",
                "give each workstream its own id",
            )
        if ws.ws_id in step_counts:
            add(
                f"workstreams[{wi}].ws_id",
                f"ws_id {ws.ws_id!r} is also a step_id",
                "ids name doit tasks: keep them unique",
            )
        if ws.depends_on:
            wpath = f"workstreams[{wi}]"
            _check_depends_on(add, wpath, "workstream", ws.ws_id, ws.depends_on, known_ws)
        if not ws.steps:
            add(f"workstreams[{wi}].steps", "a workstream needs at least one step (or `tasks`)")
        for si, step in enumerate(ws.steps):
            if step_counts[step.step_id] > 1:
                add(
                    f"workstreams[{wi}].steps[{si}].step_id",
                    f"duplicate step_id {step.step_id!r}",
                    "give each step its own id",
                )
            if step.depends_on:
                spath = f"workstreams[{wi}].steps[{si}]"
                _check_depends_on(add, spath, "step", step.step_id, step.depends_on, all_ids)
            _check_tool(add, wi, si, bundle, ws, step, tools)
            context = step.context
            for key, listed in (("files", context.files), ("create_files", context.create_files)):
                for fi, path in enumerate(listed):
                    why = problem(path)
                    if why:
                        hint = (
                            "steps may not touch .uet/, .git/ or .doit.db*: name the project "
                            "files the step works on"
                            if why.endswith("its own state")
                            else "use a path relative to the project root, inside it"
                        )
                        add(f"{_field_path(raw, wi, si, key)}[{fi}]", why, hint)
            for fi, path in enumerate(context.create_files):
                norm = normalise_path(path)
                first = creators.setdefault(norm, (step.step_id, ws.ws_id))
                if first[0] != step.step_id:
                    add(
                        f"{_field_path(raw, wi, si, 'create_files')}[{fi}]",
                        f"{path!r} is also created by step {first[0]!r}",
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
    inputs = [
        (step.step_id, path)
        for _, step in bundle.steps()
        if step.step_id not in skip
        for path in step.context.files
    ]
    if not inputs:
        return []
    created = {normalise_path(p) for _, s in bundle.steps() for p in s.context.create_files}
    return [
        (step_id, path)
        for step_id, path in inputs
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


_NEEDS_WHAT_TO_RUN = frozenset({"shell", "python"})


def _check_tool(
    add: Any, wi: int, si: int, bundle: Bundle, ws: Any, step: Step, tools: frozenset[str]
) -> None:
    tool = effective_tool(bundle, ws, step)
    if tool in tools and tool not in _NEEDS_WHAT_TO_RUN:
        return  # the common case, without composing the place
    spath = f"workstreams[{wi}].steps[{si}]"
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
        if ws.review is not None:
            levels.append((f"workstreams[{wi}].review", ws.review, ws, None))
        levels += [
            (f"workstreams[{wi}].steps[{si}].review", st.review, ws, st)
            for si, st in enumerate(ws.steps)
            if st.review is not None
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
