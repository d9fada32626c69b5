"""The bundle format's core as a strict JSON Schema: what AI CLIs' structured output accepts.

codex sends `--output-schema` to OpenAI's strict structured outputs, which refuse the full
`uet schema` (optional keys, patternProperties, numeric limits): every object here lists all
its keys as required, optional ones nullable, and the nulls are dropped from the answer.
"""

from __future__ import annotations

from typing import Any


def _obj(props: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A strict object: every key required, optional ones nullable (OpenAI strict mode)."""
    out = {
        k: ({**v, "type": [v["type"], "null"]} if k in optional else v) for k, v in props.items()
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": out,
        "required": list(out),
    }


_TEXT: dict[str, Any] = {"type": "string"}
_TEXTS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}


def draft_schema() -> dict[str, Any]:
    """The part of the bundle format a draft needs, in the JSON Schema subset the CLIs'
    structured output accepts (codex's server rejects the full `uet schema`: optional keys,
    patternProperties and numeric limits are not allowed there). Nulls are dropped after."""
    context = _obj({"instruction": _TEXT, "files": _TEXTS, "create_files": _TEXTS}, ("files",))
    step = _obj(
        {
            "step_id": _TEXT,
            "name": _TEXT,
            "tool_profile_id": _TEXT,
            "depends_on": _TEXTS,
            "context": context,
            "x-source": _TEXT,
        },
        ("tool_profile_id", "depends_on"),
    )
    ws = _obj(
        {
            "ws_id": _TEXT,
            "name": _TEXT,
            "description": _TEXT,
            "depends_on": _TEXTS,
            "steps": {"type": "array", "items": step},
            "completion_criteria": _TEXTS,
            "x-source": _TEXT,
        },
        ("description", "completion_criteria"),
    )
    return _obj(
        {
            "bundle_id": _TEXT,
            "bundle_name": _TEXT,
            "tool_profile_id": _TEXT,
            "workstreams": {"type": "array", "items": ws},
        },
        ("tool_profile_id",),
    )


def without_nulls(data: Any) -> Any:
    """A strict-mode answer says `null` for an absent optional key: absent it is."""
    if isinstance(data, dict):
        return {k: without_nulls(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [without_nulls(v) for v in data]
    return data
