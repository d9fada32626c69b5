"""The key and its parts: each part of a step that decides its result moves the key, and
`changes` names it; settings that do not decide it leave the key alone."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from uet_doit.bundle.model import Bundle
from uet_doit.cache.blobs import MISSING
from uet_doit.run.doit.compiler import build_spec
from uet_doit.run.step_cache.keys import ToolFacts, changes, secret_digest, step_key

BUNDLE = {
    "bundle_id": "k",
    "workstreams": [
        {
            "ws_id": "W",
            "steps": [
                {"step_id": "up", "tool": "aider", "create_files": ["out/up.md"]},
                {
                    "step_id": "s",
                    "tool": "aider",
                    "depends_on": ["up"],
                    "files": ["notes.md"],
                    "create_files": ["out/s.md"],
                    "instruction": "Write it",
                    "cache": {"env": ["REGION"]},
                    "timeout_seconds": 60,
                },
            ],
        }
    ],
}
FACTS = ToolFacts("aider", "aider 0.86.2", "gpt-4o", {}, {})
FILES = {"notes.md": "n1", "out/up.md": "u1"}


def spec_of(data: dict[str, object]):  # type: ignore[no-untyped-def]
    bundle = Bundle.model_validate(data)
    ws, step = bundle.steps()[1]
    return build_spec(bundle, ws, step, Path("/project"))


def key_of(spec=None, facts=FACTS, env=None, files=None):  # type: ignore[no-untyped-def]
    hashes = files or FILES
    return step_key(
        spec or spec_of(BUNDLE),
        facts,
        env if env is not None else {"REGION": "eu"},
        lambda p: hashes.get(p, MISSING),
    )


def changed(before, after) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.part for c in changes(before.parts, after.parts)]


def test_each_deciding_part_moves_the_key_and_is_named() -> None:
    base = key_of()
    assert key_of().key == base.key  # stable
    assert changed(base, key_of(files={**FILES, "notes.md": "n2"})) == ["input:notes.md"]
    assert changed(base, key_of(files={**FILES, "out/up.md": "u2"})) == ["upstream:out/up.md"]
    assert changed(base, key_of(facts=replace(FACTS, version="aider 0.87"))) == ["tool_version"]
    assert changed(base, key_of(facts=replace(FACTS, model="o3"))) == ["model"]
    assert changed(base, key_of(env={"REGION": "us"})) == ["env:REGION"]
    assert changed(base, key_of(env={})) == ["env:REGION"]
    edited = {**BUNDLE}
    steps = [dict(s) for s in BUNDLE["workstreams"][0]["steps"]]  # type: ignore[index]
    steps[1]["instruction"] = "Write it better"
    edited["workstreams"] = [{"ws_id": "W", "steps": steps}]
    assert changed(base, key_of(spec_of(edited))) == ["instruction"]


def test_settings_that_do_not_decide_the_result_leave_the_key_alone() -> None:
    steps = [dict(s) for s in BUNDLE["workstreams"][0]["steps"]]  # type: ignore[index]
    steps[1]["timeout_seconds"] = 900
    steps[1]["name"] = "a new name"
    edited = {**BUNDLE, "workstreams": [{"ws_id": "W", "steps": steps}]}
    assert key_of(spec_of(edited)).key == key_of().key


def test_values_enter_only_as_hashes() -> None:
    key = key_of(env={"REGION": "secret-region-value"})
    assert "secret-region-value" not in repr(key.parts)
    assert key.parts["env:REGION"] == secret_digest("secret-region-value")
    assert secret_digest(None) == "unset"
