"""spec-kitty work packages (`kitty-specs/<mission>/tasks/WP05-<slug>.md`): YAML front matter
(`work_package_id`, `dependencies`, `subtasks`, `phase`, `owned_files`,
`authoritative_surface`, `lane`) over the agent's prompt.

A work package is one step, its prompt the instruction, `owned_files` (and the
`authoritative_surface` folder) its scope; its phase is its workstream. Give the `tasks`
folder to keep the edges between packages. `lane: done` is kept with `skip: done`.
"""

from __future__ import annotations

import re
from pathlib import Path

from uet_doit.plans.dialects.files import verify_command
from uet_doit.plans.dialects.model import (
    Group,
    Item,
    PlanDoc,
    as_list,
    front_matter,
    merge_docs,
    sections,
    status_of,
)
from uet_doit.plans.plan_markdown import slug

NAME = "spec-kitty"
TITLE = "spec-kitty work package"
EXAMPLE = "---\nwork_package_id: WP05\ndependencies: [WP03]\nowned_files: [src/app/router.py]\n---"
PER_FILE = True

_DONE_SECTION = re.compile(r"(?i)definition of done|acceptance|success criteria")
_TEST_SECTION = re.compile(r"(?i)test strategy|verification|validation")


def detect(path: Path, text: str) -> str | None:
    meta, _ = front_matter(text)
    if meta and "work_package_id" in meta:
        return f"front matter with work_package_id {meta['work_package_id']}"
    if meta and "kitty-specs/" in path.as_posix() and re.match(r"WP\d+", path.name):
        return "a WPnn file under kitty-specs/ with front matter"
    return None


def read(text: str, source: str) -> PlanDoc:
    meta, lines = front_matter(text)
    meta = meta or {}
    key = str(meta.get("work_package_id") or Path(source).stem.split("-")[0])
    body = "\n".join(text.replace("\r\n", "\n").split("\n")[lines:])
    title = str(meta.get("title") or key)
    item = Item(key, title, f"{source}:1", rule="spec-kitty work package")
    item.body = body.strip().split("\n")
    for name, _, part in sections(body, lines):
        bullets = [re.sub(r"^\s*[-*]\s+(\[.\]\s+)?", "", ln).strip() for ln in part
                   if re.match(r"^\s*[-*]\s+", ln)]  # fmt: skip
        if _DONE_SECTION.search(name):
            item.criteria += bullets
        if _TEST_SECTION.search(name) or _DONE_SECTION.search(name):
            item.validation = item.validation or verify_command("\n".join(part))
    item.depends = as_list(meta.get("dependencies"))
    item.scope = as_list(meta.get("owned_files"))
    surface = str(meta.get("authoritative_surface") or "").strip()
    if surface:
        item.scope.append(surface.rstrip("/") + "/**" if surface.endswith("/") else surface)
    folder = Path(source).parent.name  # `tasks/done/WP01.md`: the lane is the folder
    lanes = ("planned", "doing", "for_review", "done")
    item.status = status_of(
        meta.get("lane") or meta.get("status") or (folder if folder in lanes else None)
    )
    for field in ("subtasks", "requirement_refs", "agent", "role", "execution_mode"):
        if meta.get(field):
            item.metadata[field] = meta[field]
    target = meta.get("merge_target_branch")
    if target:
        item.metadata["merge_target_branch"] = target
    if "lane" in meta:
        item.sync = {"kind": "frontmatter", "field": "lane", "done": "done"}
    phase = str(meta.get("phase") or "Work packages")
    name = slug(phase, 40)
    group = Group(
        name if name.startswith("phase") else f"phase-{name}",
        phase,
        f"{source}:1",
        [item],
        depends=[],
    )
    group.rule = "spec-kitty phase"
    return PlanDoc(title, [group])


def merge(docs: list[PlanDoc]) -> PlanDoc:
    return merge_docs(docs, "Work packages")
