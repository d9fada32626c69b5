"""A reviewer's verdict `{met, evidence, files}`: the question, the schema, and the answer.

The prompt opens with REVIEW_OPENING (the fake tools in tests recognise a review by it).
Each CLI is asked in the strictest way it has (structured_args) and run read-only
(read_only_options: claude's plan mode, codex's read-only sandbox, gemini's plan mode,
aider's --dry-run); whatever it answers is read defensively, and anything but a boolean
`met` is no verdict, with the answer's first lines as the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from uet_doit.tools.structured import answer_text, json_object

REVIEW_OPENING = "You are a reviewer."

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "met": {"type": "boolean"},
        "evidence": {"type": "string"},
        "files": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["met", "evidence", "files"],
    "additionalProperties": False,
}

#: how much of an unusable answer is kept as the reason
_RAW_LINES = 3
_RAW_CHARS = 300


@dataclass(frozen=True)
class Verdict:
    """`met` None: the reviewer gave no usable verdict (evidence says why)."""

    met: bool | None
    evidence: str
    files: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return self.met is not None

    def to_data(self) -> dict[str, Any]:
        return {"met": self.met, "evidence": self.evidence, "files": list(self.files)}


def no_verdict(why: str, raw: str = "") -> Verdict:
    lines = [ln.strip() for ln in raw.strip().splitlines() if ln.strip()][:_RAW_LINES]
    shown = " | ".join(lines)[:_RAW_CHARS]
    return Verdict(None, f"no verdict: {why}" + (f"; the reply began: {shown}" if shown else ""))


def read_only_options(tool: str) -> dict[str, Any]:
    """Tool options that keep the reviewer from writing (uet also discards what it writes)."""
    if tool == "claude":
        return {"permission_mode": "plan"}
    if tool == "codex":
        return {"sandbox": "read-only"}
    if tool == "gemini":
        return {"approval_mode": "plan"}
    if tool == "aider":
        return {"args": ["--dry-run"]}
    return {}


def read_verdict(tool: str, stdout: str) -> Verdict:
    """The verdict in a reviewer's output; never raises."""
    text = answer_text(tool, stdout)
    if not text:
        return no_verdict("the reviewer gave no answer", stdout)
    data, why = json_object(text)
    if data is None:
        return no_verdict(why or "no JSON object", text)
    met = data.get("met")
    if not isinstance(met, bool):
        return no_verdict("`met` is not true or false", text)
    evidence = data.get("evidence")
    files = data.get("files")
    return Verdict(
        met,
        evidence.strip()[:4000] if isinstance(evidence, str) else "",
        tuple(str(f)[:500] for f in files[:50]) if isinstance(files, list) else (),
    )
