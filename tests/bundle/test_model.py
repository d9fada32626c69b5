from __future__ import annotations

import pytest
from pydantic import ValidationError

from uet_doit.bundle.effective import effective_resilience, effective_timeout, effective_tool
from uet_doit.bundle.model import Bundle


def bundle(**ws_extra: object) -> Bundle:
    return Bundle.model_validate(
        {
            "bundle_id": "b",
            "resilience": {"max_retries": 5, "initial_delay": 2},
            "workstreams": [
                {"ws_id": "W", "steps": [{"step_id": "s", "command": "true"}], **ws_extra}
            ],
        }
    )


def test_real_bundle_spellings_fold_into_context() -> None:
    b = Bundle.model_validate(
        {
            "bundle_id": "b",
            "workstreams": [
                {
                    "ws_id": "W",
                    "steps": [
                        {
                            "step_id": "s",
                            "description": "Do the thing",
                            "files": ["a.md"],
                            "create_files": ["b.md"],
                            "validation": {"command": "make check"},
                        }
                    ],
                }
            ],
        }
    )
    step = b.workstreams[0].steps[0]
    assert step.context.files == ["a.md"]
    assert step.context.create_files == ["b.md"]
    assert step.instruction == "Do the thing"
    assert step.validation is not None and step.validation.test_command == "make check"


def test_same_key_at_step_and_in_context_is_refused() -> None:
    with pytest.raises(ValidationError, match="both on the step and in its context"):
        Bundle.model_validate(
            {
                "bundle_id": "b",
                "workstreams": [
                    {
                        "ws_id": "W",
                        "steps": [{"step_id": "s", "files": ["a"], "context": {"files": ["b"]}}],
                    }
                ],
            }
        )


def test_task_list_workstream_becomes_one_step() -> None:
    b = Bundle.model_validate(
        {
            "bundle_id": "b",
            "workstreams": [
                {
                    "ws_id": "ws-a",
                    "tool": "shell",
                    "tasks": ["Write parser", "Add tests"],
                    "files_scope": ["src/p.py", "README.md"],
                    "files_create": ["src/p.py"],
                    "acceptance_tests": ["pytest -q tests", "Parser handles unicode"],
                }
            ],
        }
    )
    ws = b.workstreams[0]
    step = ws.steps[0]
    assert step.step_id == "ws-a-tasks"
    assert step.context.create_files == ["src/p.py"]
    assert step.context.files == ["README.md"]
    assert step.instruction == "- Write parser\n- Add tests"
    assert step.validation is not None and step.validation.test_command == "pytest -q tests"
    assert ws.completion_criteria == ["Parser handles unicode"]
    assert ws.tool_profile_id == "shell"


def test_settings_inherit_step_then_workstream_then_bundle() -> None:
    b = bundle(resilience={"max_retries": 1}, timeout_seconds=30)
    ws = b.workstreams[0]
    step = ws.steps[0]
    res = effective_resilience(b, ws, step)
    assert res.max_retries == 1  # workstream beats bundle
    assert res.initial_delay == 2  # bundle beats default
    assert res.backoff_strategy == "exponential"  # default
    assert effective_timeout(b, ws, step) == 30


def test_command_without_tool_is_a_shell_step_and_no_tool_is_routed() -> None:
    b = Bundle.model_validate(
        {
            "bundle_id": "b",
            "workstreams": [
                {
                    "ws_id": "W",
                    "steps": [
                        {"step_id": "s", "command": "true"},
                        {"step_id": "t", "instruction": "write"},
                    ],
                }
            ],
        }
    )
    ws = b.workstreams[0]
    assert effective_tool(b, ws, ws.steps[0]) == "shell"
    assert effective_tool(b, ws, ws.steps[1]) == "auto"


def test_task_basename_is_doit_friendly() -> None:
    assert bundle().task_basename == "b"
    b = Bundle.model_validate(
        {
            "bundle_id": "Phase-K-plus",
            "workstreams": [{"ws_id": "W", "steps": [{"step_id": "s", "command": "true"}]}],
        }
    )
    assert b.task_basename == "phase_k_plus"


@pytest.mark.parametrize(
    "bad",
    [
        {"max_retries": -1},
        {"backoff_strategy": "fibonacci"},
        {"initial_delay": 10, "max_delay": 1},
        {"retry_on": ["everything"]},
    ],
)
def test_nonsensical_resilience_is_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        bundle(resilience=bad)
