"""The only code that reads bundle files: JSON or YAML in, a checked Bundle (or all problems)."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from uet_doit.bundle.limits import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_PROBLEMS,
    LimitError,
    YamlBoundError,
    check_values,
    load_json,
    load_yaml,
)
from uet_doit.bundle.model import Bundle

if TYPE_CHECKING:
    from uet_doit.bundle.known_tools import KnownTools
from uet_doit.bundle.schema import LineFinder, json_path, problems_from_validation
from uet_doit.errors import BundleError, Problem
from uet_doit.version import __version__

BUNDLE_SUFFIXES = (".json", ".yaml", ".yml")
#: keys of the older single-workstream files (`uet import` reads those)
_LEGACY_KEYS = frozenset({"openspec_change", "ccpm_issue", "files_scope", "files_create", "gate"})


def read_data(path: Path) -> tuple[Any, str]:
    """Parse a bundle file; syntax errors and values beyond the bounds in `limits` become
    Problems with line and column (or JSON path)."""
    name = str(path)
    if path.suffix.lower() not in BUNDLE_SUFFIXES:
        raise BundleError(
            [Problem(name, "", f"unknown file type {path.suffix!r}", "use .json, .yaml or .yml")]
        )
    text = _read_text(path)
    try:
        data = _parse(path, text)
    except LimitError as exc:
        where = f"line {exc.line}" if exc.line else ""
        hint = exc.hint or "uet reads bundles with bounded memory and time: simplify the file"
        raise BundleError([Problem(name, where, exc.message, hint)]) from None
    except RecursionError:  # the pure-Python YAML parser, where libyaml is missing
        message = f"the data is nested more than {MAX_DEPTH} levels deep"
        raise BundleError([Problem(name, "", message, "flatten it")]) from None
    return data, text


def _read_text(path: Path) -> str:
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            message = f"the file is {size:,} bytes; bundles are read up to {MAX_FILE_BYTES:,}"
            raise BundleError([Problem(name, "", message, "split it into several bundles")])
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BundleError([Problem(name, "", "file not found", "check the path")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError([Problem(name, "", f"cannot read: {exc}", "save it as UTF-8")]) from None


def _parse(path: Path, text: str) -> Any:
    name = str(path)
    if path.suffix.lower() == ".json":
        try:
            return load_json(text, _no_duplicate_keys)
        except _DuplicateKey as exc:
            key = str(exc)
            seen = [n for n, ln in enumerate(text.splitlines(), 1) if f'"{key}"' in ln]
            line = seen[1] if len(seen) > 1 else (seen[0] if seen else None)  # the second one
            where = f"line {line}" if line else ""
            raise BundleError(
                [
                    Problem(
                        name,
                        where,
                        f"key {key!r} is given twice in one object (JSON keeps only the last)",
                        "remove or rename one of them",
                    )
                ]
            ) from None
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            hint = "fix the syntax at that place"
            if text.lstrip().startswith("/*"):
                hint = (
                    "it starts with a /* comment */ header, like the older workstream files: "
                    f"make a bundle of it with `uet import {name} -o bundle.json`"
                )
            raise BundleError([Problem(name, where, f"invalid JSON: {exc.msg}", hint)]) from None
    try:
        return load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or ""
        if isinstance(exc, YamlBoundError):
            message, hint = problem, exc.hint
        else:
            message, hint = f"invalid YAML: {problem}", "fix the syntax at that place"
        raise BundleError([Problem(name, where, message, hint)]) from None
    except yaml.YAMLError as exc:
        raise BundleError([Problem(name, "", f"invalid YAML: {exc}", "fix the syntax")]) from None


class _DuplicateKey(ValueError):
    """A key given twice in one JSON object (raised by the parser hook, reported as a Problem)."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON allows a key twice and keeps the last: in a bundle that silently drops a step."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_bundle(data: Any, name: str, text: str | None = None) -> Bundle:
    """Validate parsed data against the model; every problem is reported at once."""
    if not isinstance(data, dict):
        found = type(data).__name__ if data is not None else "an empty file"
        hint = "a bundle is an object with bundle_id and workstreams"
        if isinstance(data, list):
            hint += f"; for a list of older workstreams use `uet import {name} -o bundle.json`"
        raise BundleError([Problem(name, "$", f"expected an object, found {found}", hint)])
    beyond = check_values(data)
    if beyond:
        hints: set[str] = set()  # each hint once: twenty identical ones would fill the screen
        problems = []
        for loc, message, hint in beyond:
            problems.append(Problem(name, json_path(loc), message, None if hint in hints else hint))
            hints.add(hint)
        if len(beyond) >= MAX_PROBLEMS:
            message = f"the first {MAX_PROBLEMS} of these problems are listed; there may be more"
            problems.append(Problem(name, "", message, None))
        raise BundleError(_with_lines(problems, text))
    if "bundle_id" not in data and "workstreams" not in data and _LEGACY_KEYS & set(data):
        message = "this is a workstream in the older flat format (`id`, `tasks`, ...), not a bundle"
        hint = f"make a bundle of it (and its siblings) with `uet import {name} -o bundle.json`"
        raise BundleError([Problem(name, "$", message, hint)])
    try:
        return Bundle.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_validation(exc, name, data)
        raise _SchemaProblems(problems, data, exc) from None


class _SchemaProblems(BundleError):
    """Schema problems, plus what is needed to go on checking the rest of the bundle."""

    def __init__(self, problems: list[Problem], data: Any, exc: ValidationError) -> None:
        super().__init__(problems)
        self.data = data
        self.exc = exc


def _without_bad_parts(data: Any, exc: ValidationError) -> tuple[Bundle | None, set[str]]:
    """Drop what failed validation and validate the rest, so semantic checks still run on it
    and every problem is reported in one go. Returns the ids of dropped steps/workstreams."""
    import copy

    current = copy.deepcopy(data)
    dropped: set[str] = set()
    for _ in range(5):
        for err in exc.errors():
            loc = [p for p in err["loc"] if not (isinstance(p, str) and ":" in p)]
            _drop(current, loc, err["type"] == "missing", dropped)
        _compact(current)  # once per round: every error's place is in the data it came from
        try:
            return Bundle.model_validate(current), dropped
        except ValidationError as again:
            exc = again
    return None, dropped


def _drop(data: Any, loc: list[Any], missing: bool, dropped: set[str]) -> None:
    """Delete the bad key; for a missing key or a bad step/workstream, the whole item."""
    parents: list[tuple[Any, Any]] = []
    node = data
    for part in loc:
        if node is None:
            return  # inside an item an earlier error of this round dropped
        parents.append((node, part))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    if missing and parents:
        parents.pop()  # the key itself is absent: drop its owner
    # drop the innermost list item that is a step or workstream, else the bad key
    for container, key in reversed(parents):
        if isinstance(container, list) and isinstance(
            container[key] if key < len(container) else None, dict
        ):
            item = container[key]
            if "step_id" in item or "ws_id" in item or missing:
                dropped.add(str(item.get("step_id") or item.get("ws_id") or ""))
                container[key] = None  # compacted after the round (per drop was quadratic)
                return
        if isinstance(container, dict) and not missing and key in container:
            container.pop(key)
            return


#: ids as messages quote them (`{id!r}`)
_QUOTED_IDS = re.compile(r"'([^']*)'|\"([^\"]*)\"")


def _names_dropped(message: str, dropped: set[str]) -> bool:
    """Does a problem name an item dropped for its schema problems? (A set lookup per quoted
    id: scanning every dropped id for every problem was quadratic.)"""
    return any((a or b) in dropped for a, b in _QUOTED_IDS.findall(message) if a or b)


def _compact(data: Any) -> None:
    if isinstance(data, dict):
        for value in data.values():
            _compact(value)
    elif isinstance(data, list):
        data[:] = [v for v in data if v is not None]
        for value in data:
            _compact(value)


def _with_lines(problems: list[Problem], text: str | None) -> list[Problem]:
    """Add `(line N)` to JSON-path locations, composing the text only on this error path."""
    if not text:
        return problems
    out = []
    finder = LineFinder(text)
    for p in problems:
        line = finder.line(p.where)
        out.append(Problem(p.file, f"{p.where} (line {line})", p.message, p.hint) if line else p)
    return out


def load_bundle(
    path: Path,
    root: Path | None = None,
    *,
    known_tools: KnownTools,
    remember: bool = False,
) -> Bundle:
    """Read, validate and check a bundle against its project root (cwd by default) and
    the tools this installation has (`default_known_tools()` of tools/routing.py).

    With `remember` (uet run), a text that passed the semantic checks in this project
    before skips them (they stat every path); the schema is always validated.
    """
    with collector_paused():
        return _load_bundle(path, root, known_tools, remember)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """A bundle of 100k steps is millions of objects, allocated at once and all kept: the
    cyclic garbage collector's passes over them were over half of `uet validate`'s time,
    and they hold no cycle to collect. Paused while loading (if it was on); then what was
    allocated is moved to the oldest generation (freeze, unfreeze), as a long-lived object
    would be, instead of being traversed by a young collection and again by each older one."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if was_on:
            gc.enable()


def _load_bundle(path: Path, root: Path | None, known_tools: KnownTools, remember: bool) -> Bundle:
    from uet_doit.bundle.checks import check_bundle  # lazy: start-up time (a stamped no-op)

    data, text = read_data(path)
    try:
        bundle = parse_bundle(data, str(path), text)
    except _SchemaProblems as exc:
        partial, dropped = _without_bad_parts(exc.data, exc.exc)
        problems = list(exc.problems)
        if partial is not None:
            more = check_bundle(partial, None, str(path), root or Path.cwd(), known_tools)
            problems += [
                p
                for p in more
                if not _names_dropped(p.message, dropped)
                and not (dropped and p.message.startswith("a workstream needs at least one step"))
            ]
        raise BundleError(_with_lines(problems, text)) from None
    project = root or Path.cwd()
    stamp = _check_stamp(text, project, known_tools) if remember else None
    stamp_file = _stamp_file(project, path)
    if stamp is not None and stamp_file.exists() and stamp_file.read_text() == stamp:
        return bundle  # this very text passed every check here before
    problems = check_bundle(bundle, data, str(path), project, known_tools)
    if problems:
        raise BundleError(_with_lines(problems, text))
    if stamp is not None:
        with contextlib.suppress(OSError):
            stamp_file.parent.mkdir(parents=True, exist_ok=True)
            stamp_file.write_text(stamp)
    return bundle


def _check_stamp(text: str, root: Path, known_tools: KnownTools) -> str:
    """What the semantic checks depend on: the text, the project, the tools, the version."""
    tools = known_tools.stamp()
    key = "\0".join((__version__, str(root.resolve()), tools, text))
    return hashlib.sha256(key.encode()).hexdigest()


def _stamp_file(root: Path, path: Path) -> Path:
    import hashlib

    name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return root / ".uet" / "checked" / name
