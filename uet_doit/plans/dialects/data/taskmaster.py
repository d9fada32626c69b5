"""Task Master `tasks.json` (`.taskmaster/tasks/tasks.json`, before 0.16 `tasks/tasks.json`):
`{"tasks": [...]}`, or one `{"tasks": [...]}` per tag (`{"master": {...}, "feat-x": {...}}`).

A task is a workstream (after the tasks in its `dependencies`); its subtasks are its steps
(after the siblings in theirs: `2`, or `"3.1"` for another task's subtask), a task without
subtasks is one step. `done`/`cancelled`/`deferred` tasks are kept with `skip`; `details`
is the instruction, `testStrategy` the completion criterion (and the validation when it
names a test command).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from uet_doit.errors import UsageError
from uet_doit.plans.dialects.files import item_files, verify_command
from uet_doit.plans.dialects.model import SKIPPED, Group, Item, PlanDoc, status_of

NAME = "taskmaster"
TITLE = "Task Master tasks.json"
EXAMPLE = '{"tasks": [{"id": 2, "title": "Schema", "status": "pending",\n  "dependencies": [1]}]}'

_PRIORITY = {"critical": "critical", "high": "high", "medium": "medium", "low": "low"}


def _tags(data: Any) -> list[tuple[str | None, list[Any]]] | None:
    """(tag, tasks) of each tag; None when the data is not Task Master's."""
    if isinstance(data, dict) and isinstance(data.get("tasks"), list):
        return [(None, data["tasks"])]
    if isinstance(data, dict) and data:
        tags: list[tuple[str | None, list[Any]]] = [(str(k), v["tasks"]) for k, v in data.items()
                if isinstance(v, dict) and isinstance(v.get("tasks"), list)]  # fmt: skip
        return tags or None
    return None


def _is_task(task: Any) -> bool:
    return isinstance(task, dict) and "id" in task and "title" in task


def detect(path: Path, text: str) -> str | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        # Task Master's own place: read it as Task Master, so the bad spot is named
        where = path.as_posix()
        known = where.endswith((".taskmaster/tasks/tasks.json", "tasks/tasks.json"))
        return "the file tasks/tasks.json (Task Master's)" if known else None
    tags = _tags(data)
    if not tags or not all(_is_task(t) for _, tasks in tags for t in tasks):
        return None
    n = sum(len(tasks) for _, tasks in tags)
    shape = "one tasks list" if tags[0][0] is None else f"{len(tags)} tag(s) of tasks"
    return f"JSON with {shape} ({n} tasks with id, title, status, dependencies)"


def read(text: str, source: str) -> PlanDoc:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"{source}: not valid JSON: {exc}", "fix the file there, then convert again"
        ) from exc
    tags = _tags(data) or []
    doc = PlanDoc(None)
    many = len(tags) > 1
    for tag, tasks in tags:
        base: list[str | int] = [] if tag is None else [tag]
        prefix = f"{tag}-" if many and tag else ""
        at = f"{tag}." if tag else ""
        for i, task in enumerate(tasks):
            if not _is_task(task):
                doc.warnings.append(f"{source} {at}tasks[{i}]: not a task (no id/title); left out")
                continue
            doc.groups.append(_task(task, [*base, "tasks", i], f"{source} {at}tasks[{i}]", prefix))
    if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
        name = data["metadata"].get("projectName")
        doc.title = str(name) if name else None
    return doc


def _task(task: dict[str, Any], pointer: list[str | int], where: str, prefix: str) -> Group:
    tid = str(task["id"])
    group = Group(f"{prefix}task-{tid}", f"{tid}. {task['title']}", where, rule="Task Master task")
    # `"3.1"`: a subtask of another task; `3`: the task
    group.depends = [
        f"{prefix}{d}" if "." in d else f"{prefix}task-{d}" for d in _ids(task.get("dependencies"))
    ]
    group.priority = _PRIORITY.get(str(task.get("priority", "")).lower())
    if task.get("description"):
        group.description = str(task["description"])
    status = status_of(task.get("status"))
    if task.get("testStrategy"):
        group.criteria = [str(task["testStrategy"])]
    subtasks = [s for s in task.get("subtasks") or [] if isinstance(s, dict) and "id" in s]
    if not subtasks:
        item = _item(task, f"{prefix}{tid}", where, pointer, status)
        group.items.append(item)
        return group
    siblings = {str(s["id"]) for s in subtasks}
    # `--sync-plan` marks the task done once all its subtasks are
    group.metadata["source_item"] = {
        "kind": "json",
        "pointer": pointer,
        "id": task["id"],
        "done": "done",
    }
    for j, sub in enumerate(subtasks):
        sid = str(sub["id"]) if "." in str(sub["id"]) else f"{tid}.{sub['id']}"
        own = status_of(sub.get("status"))
        item = _item(
            sub,
            f"{prefix}{sid}",
            f"{where}.subtasks[{j}]",
            [*pointer, "subtasks", j],
            status if status in SKIPPED else own,
        )
        item.depends = []
        for dep in _ids(sub.get("dependencies")):
            if "." in dep:
                item.depends.append(f"{prefix}{dep}")
            elif dep in siblings:
                item.depends.append(f"{prefix}{tid}.{dep}")
            else:
                item.depends.append(f"{prefix}task-{dep}")
        group.items.append(item)
    return group


def _item(
    task: dict[str, Any], key: str, where: str, pointer: list[str | int], status: str | None
) -> Item:
    item = Item(key, str(task.get("title") or key), where, rule="Task Master task")
    body = [str(task[k]) for k in ("description", "details") if task.get(k)]
    item.body = [line for part in body for line in ["", *part.split("\n")]][1:]
    item.status = status
    strategy = str(task.get("testStrategy") or "")
    if strategy:
        item.criteria = [strategy]
        item.validation = verify_command(strategy)
    item.creates, item.edits, folders = item_files(item.title, item.body)
    if folders:
        item.metadata["output_dirs"] = folders
    if task.get("priority"):
        item.metadata["priority"] = task["priority"]
    item.sync = {"kind": "json", "pointer": pointer, "id": task["id"], "done": "done"}
    return item


def _ids(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(v) for v in value if isinstance(v, int | str) and str(v).strip()]
