"""Helpers of the dialect tests: convert a plan file through `uet convert`, then look at the
bundle as edges, skips and files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from support import FIXTURES, Project

DIALECTS = FIXTURES / "dialects"
CORPUS = Path("/work/shared/corpus/plans/dialects")


def convert(project: Project, source: Path, *args: str) -> dict[str, Any]:
    """`uet convert` of a copy of `source` in the project; the bundle must pass `uet validate`."""
    target = project.root / source.name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)
    result = project.uet("convert", source.name, "-o", "bundle.json", *args)
    assert result.code == 0, result.out + result.err
    check = project.uet("validate", "bundle.json")
    assert check.code == 0, check.out + check.err
    data: dict[str, Any] = json.loads(project.read("bundle.json"))
    return data


def steps(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["step_id"]: s for ws in bundle["workstreams"] for s in ws["steps"]}


def edges(bundle: dict[str, Any]) -> dict[str, list[str]]:
    """Step id -> its depends_on; workstream id -> its depends_on (prefixed `ws:`)."""
    out = {sid: s.get("depends_on", []) for sid, s in steps(bundle).items()}
    out |= {f"ws:{ws['ws_id']}": ws.get("depends_on", []) for ws in bundle["workstreams"]}
    return out


def skipped(bundle: dict[str, Any]) -> dict[str, str]:
    return {sid: s["skip"] for sid, s in steps(bundle).items() if s.get("skip")}
