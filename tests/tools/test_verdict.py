"""Reading a reviewer's verdict out of each CLI's output, strictly and defensively."""

from __future__ import annotations

import json

import pytest

from uet_doit.tools.verdict import read_only_options, read_verdict

VERDICT = {"met": False, "evidence": "only 7 ADRs", "files": ["docs/adr/README.md"]}


def claude_line(**fields: object) -> str:
    return json.dumps({"type": "result", "subtype": "success", "is_error": False, **fields})


def codex_stream(text: str) -> str:
    item = {"type": "item.completed", "item": {"type": "agent_message", "text": text}}
    return "\n".join(json.dumps(e) for e in ({"type": "turn.started"}, item))


@pytest.mark.parametrize(
    ("tool", "stdout"),
    [
        ("claude", claude_line(result="ignored", structured_output=VERDICT)),
        ("claude", claude_line(result=json.dumps(VERDICT))),  # no structured output
        ("codex", codex_stream(json.dumps(VERDICT))),
        ("gemini", json.dumps({"response": f"```json\n{json.dumps(VERDICT)}\n```"}, indent=2)),
        (
            "aider",
            f"Aider v0.86.2\nModel: gpt-4o\nHere it is:\n{json.dumps(VERDICT)}\nTokens: 2k sent.",
        ),
        ("my_adapter", f"verdict follows {json.dumps(VERDICT)} end"),
    ],
)
def test_each_cli_answer_shape_gives_the_verdict(tool: str, stdout: str) -> None:
    verdict = read_verdict(tool, stdout)
    assert (verdict.met, verdict.evidence, verdict.files) == (
        False,
        "only 7 ADRs",
        ("docs/adr/README.md",),
    )


@pytest.mark.parametrize(
    ("stdout", "why"),
    [
        ("", "the reviewer gave no answer"),
        ("Looks fine to me.", "holds no JSON object"),
        ('{"met": "yes", "evidence": "ok"}', "`met` is not true or false"),
        ('{"met": true, "evidence": ', "not valid JSON"),
        ("[true]", "holds no JSON object"),
    ],
)
def test_anything_but_a_boolean_met_is_no_verdict_with_the_reply(stdout: str, why: str) -> None:
    verdict = read_verdict("aider", stdout)
    assert verdict.met is None and not verdict.usable
    assert verdict.evidence.startswith("no verdict: ") and why in verdict.evidence
    if stdout:
        assert stdout.splitlines()[0][:20] in verdict.evidence


def test_missing_evidence_and_files_are_empty_and_long_ones_are_cut() -> None:
    verdict = read_verdict("codex", codex_stream(json.dumps({"met": True})))
    assert (verdict.met, verdict.evidence, verdict.files) == (True, "", ())
    long = {"met": True, "evidence": "x" * 9000, "files": [f"f{i}" for i in range(80)]}
    verdict = read_verdict("codex", codex_stream(json.dumps(long)))
    assert len(verdict.evidence) == 4000 and len(verdict.files) == 50


def test_every_builtin_reviewer_runs_read_only() -> None:
    assert read_only_options("claude") == {"permission_mode": "plan"}
    assert read_only_options("codex") == {"sandbox": "read-only"}
    assert read_only_options("gemini") == {"approval_mode": "plan"}
    assert read_only_options("aider") == {"args": ["--dry-run"]}
