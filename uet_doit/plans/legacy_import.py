"""`uet import FILE...`: the older flat workstream files, combined into one bundle.

Teams have dozens of `ws-*.json` files (`id`, `tasks`, `files_scope`, `acceptance_tests`,
`circuit_breaker{max_attempts}`, ...). Importing them keeps every key: what has a bundle field
moves there, the rest lands in the workstream's `metadata`, so nothing is silently lost. A file
that cannot be read is named with its line and column and skipped; the others still import.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from uet_doit.bundle.fields import ID_PATTERN, Priority
from uet_doit.bundle.legacy_tasks import looks_like_command, tasks_to_step
from uet_doit.bundle.model import Workstream
from uet_doit.errors import Problem
from uet_doit.plans.plan_markdown import slug

_LEGACY_KEYS = frozenset({
    "openspec_change", "ccpm_issue", "gate", "files_scope", "files_create", "tasks", "tool",
    "acceptance_tests", "circuit_breaker", "steps", "phases",
})  # fmt: skip
#: keys that mean the same in a bundle workstream; copied as they are
_NATIVE_KEYS = ("name", "description", "kind", "parallel_ok", "timeout_seconds", "max_cost_usd")
_PRIORITIES = frozenset(get_args(Priority))
_BACKOFF = frozenset(["exponential", "linear", "constant"])


def _uncomment(value: Any) -> Any:
    """Drop `_comment*` keys at every depth: they are notes for people, not data."""
    if isinstance(value, dict):
        return {
            k: _uncomment(v)
            for k, v in value.items()
            if not (isinstance(k, str) and k.startswith("_comment"))
        }
    if isinstance(value, list):
        return [_uncomment(v) for v in value]
    return value


def _blank_leading_comments(text: str) -> str:
    """Blank out `/* ... */` and `//` lines before the JSON, keeping line/column numbers."""
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if text.startswith("/*", pos):
            end = text.find("*/", pos + 2)
            end = len(text) if end < 0 else end + 2
        elif text.startswith("//", pos):
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
        else:
            return text
        blank = re.sub(r"[^\n]", " ", text[pos:end])
        text = text[:pos] + blank + text[end:]
        pos = end


def read_legacy_file(path: str) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The workstream objects of one file, or the problems that stop it being read."""
    try:
        raw = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return [], [Problem(path, "", "file not found")]
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem(path, "", f"cannot read: {exc}")]
    try:
        data = json.loads(_blank_leading_comments(raw))
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        return [], [Problem(path, where, f"not valid JSON: {exc.msg}", "only JSON files import")]
    items = data if isinstance(data, list) else [data]
    found: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        where = f"item [{index}]" if isinstance(data, list) else ""
        if isinstance(item, dict) and "workstreams" in item and "bundle_id" in item:
            problems.append(
                Problem(path, where, "already a bundle", "use it as it is: `uet validate`")
            )
        elif not isinstance(item, dict) or not isinstance(item.get("id"), str):
            problems.append(Problem(path, where, "not a legacy workstream: no string `id`"))
        elif not _LEGACY_KEYS & item.keys():
            problems.append(
                Problem(path, where, "not a legacy workstream: no `tasks`, `files_scope`, ...")
            )
        else:
            found.append(_uncomment(item))
    return found, problems


def _split_tests(tests: list[Any]) -> tuple[list[str], list[str]]:
    texts = [str(t) for t in tests]
    return [t for t in texts if looks_like_command(t)], [
        t for t in texts if not looks_like_command(t)
    ]


def _legacy_step(raw: dict[str, Any], ws_creates: list[str], criteria: list[Any]) -> dict[str, Any]:
    """A step of a legacy `steps` list; files_create go to the step whose tasks name them."""
    raw = dict(raw)
    step_id = str(raw.pop("id", None) or raw.pop("step_id", None) or "step")
    tasks = [str(t) for t in raw.pop("tasks", None) or []]
    description = raw.pop("description", None)
    commands, sentences = _split_tests(raw.pop("acceptance_tests", None) or [])
    criteria.extend(sentences)
    lines = ([str(description)] if description else []) + [f"- {t}" for t in tasks]
    creates = [f for f in ws_creates if any(f in t for t in tasks)]
    step: dict[str, Any] = {"step_id": step_id}
    for key in ("name", "tool_profile_id", "timeout_seconds", "max_cost_usd"):
        if key in raw:
            step[key] = raw.pop(key)
    if description:
        step["description"] = str(description)
    if "tool" in raw:
        step["tool_profile_id"] = raw.pop("tool")
    step["depends_on"] = [str(d) for d in raw.pop("depends_on", None) or []]
    step["context"] = {"create_files": creates, "instruction": "\n".join(lines) or step_id}
    if commands:
        step["validation"] = {"test_command": " && ".join(commands)}
    if raw:
        step["metadata"] = raw
    return step


def _steps_of(data: dict[str, Any], ws: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Fill `ws["steps"]` from legacy `steps`/`phases`, or one step carrying all tasks."""
    raw_steps = list(data.pop("steps", None) or [])
    for phase in data.pop("phases", None) or []:
        if isinstance(phase, dict):
            info = {k: v for k, v in phase.items() if k != "steps"}
            raw_steps += [{**raw, "phase": phase.get("id")} for raw in phase.get("steps") or []]
            metadata.setdefault("phases", []).append(info)
    legacy: dict[str, Any] = {
        k: data.pop(k) for k in ("tasks", "files_scope", "files_create") if k in data
    }
    tests = data.pop("acceptance_tests", None) or []
    if not raw_steps:
        legacy["acceptance_tests"] = tests
        ws["steps"] = [tasks_to_step(ws["ws_id"], legacy, ws)]
        return
    creates = [str(f) for f in legacy.get("files_create") or []]
    criteria: list[Any] = []
    steps = [_legacy_step(s, creates, criteria) for s in raw_steps if isinstance(s, dict)]
    placed = {f for s in steps for f in s["context"]["create_files"]}
    if steps:
        steps[-1]["context"]["create_files"] += [f for f in creates if f not in placed]
    scope = [f for f in legacy.get("files_scope") or [] if f not in creates]
    if scope:
        metadata["files_scope"] = scope
    if legacy.get("tasks"):
        metadata["tasks"] = legacy["tasks"]
    commands, sentences = _split_tests(tests)
    if criteria or sentences:
        ws["completion_criteria"] = criteria + sentences
    if commands:
        ws["test_gates"] = [{"type": "GATE_ACCEPTANCE", "command": c} for c in commands]
    ws["steps"] = steps


def _resilience(data: dict[str, Any], ws: dict[str, Any], metadata: dict[str, Any]) -> None:
    """circuit_breaker.max_attempts -> max_retries (attempts - 1); retry -> backoff."""
    resilience: dict[str, Any] = {}
    breaker = data.pop("circuit_breaker", None)
    if isinstance(breaker, dict):
        rest = {k: v for k, v in breaker.items() if k != "max_attempts"}
        attempts = breaker.get("max_attempts")
        if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= 1:
            resilience["max_retries"] = min(attempts - 1, 100)
        elif attempts is not None:
            rest["max_attempts"] = attempts
        if rest:
            metadata["circuit_breaker"] = rest
    elif breaker is not None:
        metadata["circuit_breaker"] = breaker
    retry = data.pop("retry", None)
    if isinstance(retry, dict):
        metadata["retry"] = retry
        if retry.get("strategy") in _BACKOFF:
            resilience["backoff_strategy"] = retry["strategy"]
        for key in ("initial_delay", "max_delay"):
            if isinstance(retry.get(key), int | float) and not isinstance(retry[key], bool):
                resilience[key] = retry[key]
    if resilience:
        ws["resilience"] = resilience
    execution = data.get("execution")
    if isinstance(execution, dict) and isinstance(execution.get("timeout_per_step"), int | float):
        ws.setdefault("timeout_seconds", execution["timeout_per_step"])


def legacy_to_workstream(item: dict[str, Any], source: str) -> dict[str, Any]:
    """One legacy workstream object as a bundle workstream dict (not yet validated)."""
    data = dict(item)
    ws_id = str(data.pop("id"))
    if not re.match(ID_PATTERN, ws_id):
        data["legacy_id"] = ws_id
        ws_id = slug(ws_id, 60)
    ws: dict[str, Any] = {"ws_id": ws_id}
    for key in _NATIVE_KEYS:
        if key in data:
            ws[key] = data.pop(key)
    metadata_value = data.pop("metadata", None)
    metadata: dict[str, Any] = {}
    if isinstance(metadata_value, dict):
        metadata.update(metadata_value)
        if metadata_value.get("priority") in _PRIORITIES:
            ws["priority"] = metadata_value["priority"]
    elif metadata_value is not None:
        metadata["metadata"] = metadata_value
    if isinstance(data.get("tool"), str):
        ws["tool_profile_id"] = data.pop("tool")
    if isinstance(data.get("doc_id"), str):
        ws["doc_id"] = data.pop("doc_id")
    depends = data.pop("depends_on", None) or []
    ws["depends_on"] = list(dict.fromkeys(str(d) for d in depends if d))
    _resilience(data, ws, metadata)
    _steps_of(data, ws, metadata)
    metadata.update(data)  # openspec_change, ccpm_issue, gate and anything unknown
    metadata["source_file"] = source
    ws["metadata"] = metadata
    return ws


def _unique_step_ids(ws: dict[str, Any], used: set[str]) -> None:
    """Step ids stay unique across the bundle: a clash is prefixed with the workstream id."""
    renamed: dict[str, str] = {}
    for step in ws["steps"]:
        old = step["step_id"]
        new = old if old not in used else f"{ws['ws_id']}.{old}"
        used.add(new)
        renamed[old] = new
        step["step_id"] = new
    for step in ws["steps"]:
        step["depends_on"] = [renamed.get(d, d) for d in step.get("depends_on", [])]


def import_files(
    paths: list[str], bundle_id: str | None = None
) -> tuple[dict[str, Any] | None, list[Problem], list[str]]:
    """The bundle of every importable workstream, the files skipped, and warnings."""
    problems: list[Problem] = []
    workstreams: list[dict[str, Any]] = []
    sources: list[str] = []
    for path in paths:
        items, found = read_legacy_file(path)
        problems += found
        for item in items:
            ws = legacy_to_workstream(item, path)
            if any(w["ws_id"] == ws["ws_id"] for w in workstreams):
                problems.append(Problem(path, ws["ws_id"], "workstream id imported twice; skipped"))
                continue
            try:
                Workstream.model_validate(ws)
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(Problem(path, ws["ws_id"], f"{loc}: {err['msg']}"))
                continue
            workstreams.append(ws)
            if path not in sources:
                sources.append(path)
    if not workstreams:
        return None, problems, []
    warnings: list[str] = []
    known = {ws["ws_id"] for ws in workstreams}
    used: set[str] = set()
    for ws in workstreams:
        for dep in ws["depends_on"]:
            if dep not in known or dep == ws["ws_id"]:
                warnings.append(
                    f"{ws['ws_id']}: depends_on {dep} is not an imported workstream; dropped"
                )
        ws["depends_on"] = [d for d in ws["depends_on"] if d in known and d != ws["ws_id"]]
        _unique_step_ids(ws, used)
    single = len(workstreams) == 1
    bundle: dict[str, Any] = {
        "bundle_id": bundle_id or (workstreams[0]["ws_id"] if single else "legacy-import"),
        "bundle_name": f"Imported legacy workstreams ({len(workstreams)})",
        "workstreams": workstreams,
        "metadata": {"imported_from": sources},
    }
    return bundle, problems, warnings
