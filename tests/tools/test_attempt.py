"""AttemptSpec and AttemptResult: the one spec an adapter reads and the result it fills."""

from __future__ import annotations

import json
from pathlib import Path

import uet_doit
from uet_doit.state.records import AttemptOutcome
from uet_doit.tools.attempt import AttemptResult, AttemptSpec, ValidationSpec
from uet_doit.tools.sandbox import SandboxSpec


def spec(root: Path) -> AttemptSpec:
    return AttemptSpec(
        "s", "W", "aider", "do it", ("a.md",), ("b.md",), root, {"UET_RUN_ID": "r", "TOKEN": "x"},
        30.0, root / "r.json", root / "o", root / "e",
        attempt=2, exit_file=root / "x", sandbox=SandboxSpec("bwrap", ((str(root), "own"),)),
        validation=ValidationSpec(("make", "check")), run_id="r", bundle_id="b",
    )  # fmt: skip


def test_the_spec_travels_as_json_and_comes_back_the_same(tmp_path: Path) -> None:
    sent = spec(tmp_path)
    assert AttemptSpec.from_json(sent.to_json()) == sent
    kept = AttemptSpec.from_json(sent.to_record())
    assert dict(kept.env) == {"UET_RUN_ID": "r"}  # a bundle's env values stay out of the store
    assert kept.config_dir == tmp_path  # no config_root: the project's own


def test_a_spec_recorded_before_it_was_the_adapters_request_still_reads(tmp_path: Path) -> None:
    data = json.loads(spec(tmp_path).to_json())
    data["workdir"] = data.pop("project_root")
    assert AttemptSpec.from_json(json.dumps(data)).project_root == tmp_path


def test_the_custom_adapter_names_are_the_attempts_own_shapes() -> None:
    assert uet_doit.StepRequest is AttemptSpec and uet_doit.ToolResult is AttemptResult
    filled = uet_doit.ToolResult(success=True, exit_code=0)
    assert filled.outcome == AttemptOutcome.RUNNING  # judged by the attempt routine after
    assert AttemptResult.from_json(filled.to_json()) == filled
