"""Structured answers from the AI CLIs: how to ask for one, and how to read it back.

Where a CLI has a structured-output option it is used: codex `--output-schema FILE` (the
final agent message is then the JSON, also written by `-o FILE`), claude `--json-schema
TEXT` (the answer in `structured_output` of its result line). gemini answers in the
`response` of its JSON result, aider on stdout; both are read defensively: the first JSON
object in a ```json fence, else the outermost braces of the text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from uet_doit.bundle.limits import LimitError, load_json
from uet_doit.tools.adapters.claude import result_json
from uet_doit.tools.adapters.codex import read_events
from uet_doit.tools.adapters.gemini import result_json as gemini_json

_FENCE = re.compile(r"```(?:json)?\s*\n(?P<body>.*?)\n```", re.S)
#: aider's own lines around the model's reply on stdout (banner, files, cost, warnings)
_AIDER_OWN = re.compile(
    r"^(Aider v|Main model:|Weak model:|Model:|Git repo:|Repo-map:|Added .* to the chat|"
    r"Creating empty file|Applied edit to|Tokens: |Warning|Use /help|Retrying in )"
)


def structured_args(tool: str, schema: Path, last_message: Path | None = None) -> list[str]:
    """The options that make `tool` answer in `schema`'s shape (none for gemini, aider)."""
    if tool == "codex":
        args = ["--output-schema", str(schema)]
        return [*args, "--output-last-message", str(last_message)] if last_message else args
    if tool == "claude":
        return ["--json-schema", schema.read_text(encoding="utf-8")]
    return []


def answer_text(tool: str, stdout: str, last_message: Path | None = None) -> str | None:
    """The answer in a CLI's stdout: structured output where it has one, else its reply."""
    if tool == "codex":
        if last_message is not None and last_message.exists():
            return last_message.read_text(encoding="utf-8")

        return read_events(stdout, Path.cwd()).last_message or None
    if tool == "claude":
        data = result_json(stdout) or {}
        if isinstance(data.get("structured_output"), dict):
            return json.dumps(data["structured_output"], indent=2, ensure_ascii=False)
        return str(data["result"]) if data.get("result") else None
    if tool == "gemini":
        data = gemini_json(stdout) or {}
        return str(data["response"]) if data.get("response") else None
    if tool == "aider":
        reply = [ln for ln in stdout.splitlines() if not _AIDER_OWN.match(ln)]
        return "\n".join(reply).strip() or None
    return stdout or None


def json_object(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object in an answer (bare, or in a ```json fence); else why there is none."""
    candidates = [m.group("body") for m in _FENCE.finditer(text)] + [text]
    last_error = "the answer holds no JSON object"
    for candidate in candidates:
        body = candidate.strip()
        if not body.startswith("{"):
            start = body.find("{")
            if start < 0:
                continue
            body = body[start : body.rfind("}") + 1]
        try:
            data = load_json(body, None)  # the bundle's bounds: depth, size (never RecursionError)
        except LimitError as exc:
            where = f"line {exc.line}: " if exc.line else ""
            last_error = f"the answer is refused: {where}{exc.message}"
            continue
        except json.JSONDecodeError as exc:
            last_error = (
                f"the answer is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
            )
            continue
        if isinstance(data, dict):
            return data, None
        last_error = "the answer is JSON but not an object"
    return None, last_error
