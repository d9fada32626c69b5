"""workstreams/phase-k-plus-bundle.json: the whole Phase K+ plan, written by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest

from uet_doit.bundle.model import Bundle
from uet_doit.plans import convert

from support import FIXTURES, REPO

ROOT = REPO
BUNDLE = ROOT / "workstreams" / "phase-k-plus-bundle.json"
PLAN = FIXTURES / "plans" / "phase-K-plus-decision-context.md"


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(BUNDLE.read_text(encoding="utf-8"))
    return loaded


def test_it_validates_with_all_five_weeks_chained(data: dict[str, Any]) -> None:
    assert data["$schema"] == "../uet_doit/bundle/bundle.schema.json"
    bundle = Bundle.model_validate(data)
    assert bundle.bundle_id == "phase-k-plus"
    assert [ws.ws_id for ws in bundle.workstreams] == [
        "WS-K0-FOUNDATION",
        "WS-K1-CRITICAL",
        "WS-K2-RUNTIME",
        "WS-K3-DEPENDENCIES",
        "WS-K4-PERFORMANCE",
    ]
    deps = {ws.ws_id: ws.depends_on for ws in bundle.workstreams}
    assert deps["WS-K2-RUNTIME"] == ["WS-K1-CRITICAL"]
    assert deps["WS-K3-DEPENDENCIES"] == ["WS-K2-RUNTIME"]
    assert deps["WS-K4-PERFORMANCE"] == ["WS-K3-DEPENDENCIES"]
    assert len(bundle.steps()) >= 28
    assert all(step.tool_profile_id == "aider" for _, step in bundle.steps())
    assert all(ws.max_cost_usd and ws.completion_criteria for ws in bundle.workstreams)


def test_steps_are_ordered_within_their_workstream(data: dict[str, Any]) -> None:
    bundle = Bundle.model_validate(data)
    ids = [step.step_id for _, step in bundle.steps()]
    assert len(ids) == len(set(ids))
    for ws in bundle.workstreams:
        own = {s.step_id for s in ws.steps}
        for step in ws.steps:
            assert set(step.depends_on) <= own, step.step_id
    adrs = [s for s in bundle.workstreams[1].steps if s.name and s.name.startswith("ADR-")]
    assert len(adrs) == 8
    assert all(s.depends_on == ["k1-01-adr-structure"] for s in adrs)


def test_every_deliverable_of_the_plan_is_a_step_output(data: dict[str, Any]) -> None:
    bundle = Bundle.model_validate(data)
    creates = [f for _, s in bundle.steps() for f in s.context.create_files]
    edits = {f for _, s in bundle.steps() for f in s.context.files}
    assert len(creates) == len(set(creates)), "two steps create the same file"
    touched = set(creates) | edits
    assert all(not p.startswith(("/", "..")) for p in touched)
    planned, _ = convert.convert_markdown(PLAN.read_text(encoding="utf-8"), source=PLAN.name)
    wanted: set[str] = set()
    for ws in planned["workstreams"]:
        for step in ws["steps"]:
            wanted |= set(step["context"].get("create_files", []))
            wanted |= set(step["context"].get("files", []))
            wanted |= set(step.get("metadata", {}).get("output_dirs", []))
    assert len(wanted) >= 20
    for path in sorted(wanted):
        if path.endswith("/"):
            assert any(f.startswith(path) for f in creates), path
        else:
            assert path in touched, path
