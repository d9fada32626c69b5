from __future__ import annotations

import pickle
from pathlib import Path

import cloudpickle

from uet_doit.bundle.model import Bundle
from uet_doit.run.context import RunContext
from uet_doit.run.doit.compiler import NoActions, compile_tasks
from uet_doit.run.doit.run_actions import RunActions

CTX = RunContext.create("phase-k-plus-1", "phase-k-plus", Path("/proj"))

BUNDLE = Bundle.model_validate(
    {
        "bundle_id": "phase-k-plus",
        "workstreams": [
            {
                "ws_id": "WS-A",
                "steps": [
                    {
                        "step_id": "a1",
                        "command": "true",
                        "files": ["in.md"],
                        "create_files": ["a.md"],
                    },
                    {
                        "step_id": "a2",
                        "command": "true",
                        "depends_on": ["a1"],
                        "create_files": ["b.md"],
                        "description": "write b",
                        "max_cost_usd": 1,
                    },
                ],
            },
            {
                "ws_id": "WS-B",
                "depends_on": ["WS-A"],
                "steps": [{"step_id": "b1", "command": "true", "files": ["b.md"]}],
            },
        ],
    }
)


def tasks(bundle: Bundle = BUNDLE, **kw: object) -> dict[str, dict[str, object]]:
    out = {}
    for t in compile_tasks(bundle, Path("/proj"), RunActions(CTX), **kw):  # type: ignore[arg-type]
        out[t["name"] or "<group>"] = t
    return out


def test_steps_map_to_doit_tasks() -> None:
    t = tasks()
    assert t["<group>"]["basename"] == "phase_k_plus"
    assert t["a1"]["file_dep"] == ["in.md"] and t["a1"]["targets"] == ["a.md"]
    # a step depending on another also depends on its outputs, so changes propagate
    assert t["a2"]["file_dep"] == ["a.md"]
    assert t["a2"]["task_dep"] == ["phase_k_plus:a1"]
    assert t["b1"]["task_dep"] == ["phase_k_plus:WS-A"]
    assert t["WS-A"]["task_dep"] == ["phase_k_plus:a1", "phase_k_plus:a2"]


def test_budget_and_names_are_not_part_of_the_signature() -> None:
    a = tasks()["a2"]["actions"][0].spec.signature  # type: ignore[index]
    changed = BUNDLE.model_copy(deep=True)
    step = changed.workstreams[0].steps[1]
    step.max_cost_usd = 5
    step.name = "renamed"
    assert tasks(changed)["a2"]["actions"][0].spec.signature == a  # type: ignore[index]
    step.context.command = "echo different"
    assert tasks(changed)["a2"]["actions"][0].spec.signature != a  # type: ignore[index]


def test_actions_pickle_for_process_workers() -> None:
    action = tasks()["a1"]["actions"][0]  # type: ignore[index]
    for dumps in (pickle.dumps, cloudpickle.dumps):
        clone = pickle.loads(dumps(action))
        assert clone.spec == action.spec and clone.ctx == action.ctx


def test_listing_builds_no_actions() -> None:
    listed = {t["name"]: t for t in compile_tasks(BUNDLE, Path("/proj"), NoActions())}
    assert listed["a1"]["actions"] == [] and listed["a1"]["file_dep"] == ["in.md"]


def test_skipped_steps_are_left_out() -> None:
    t = tasks(skip=frozenset({"a1", "a2", "b1"}))
    assert set(t) == {"<group>"}
