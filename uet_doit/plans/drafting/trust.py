"""What an AI draft may add to the plan's deterministic conversion.

A drafted bundle is input from a tool that read an untrusted plan: it may reword, split and
order steps, but anything that runs a command or widens what a step may touch (a shell step,
a validation command, a gate, notify, `isolation`, `scope`, a workspace setup, a tool that is
not an AI tool, tool options, env) must already be in the conversion, unless the user gives
`--allow-commands`; then each added one is listed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from uet_doit.bundle.effective import effective_tool
from uet_doit.bundle.model import Bundle
from uet_doit.tools.adapters import tool_traits

_LEVEL_POWERS = {
    "notify": "notify command",
    "test_gates": "gate",
    "validation": "validation command",
    "isolation": "isolation",
    "workspace": "workspace setup",
    "env": "env",
    "tool_options": "tool option",
    "scope": "scope",
}


@dataclass(frozen=True)
class Power:
    """One thing a bundle lets run or touch: what it is, its value, and where it is."""

    kind: str
    value: str
    place: str

    def problem(self) -> str:
        return (
            f"{self.place}: adds a {self.kind} ({self.value}) that the plan's conversion does "
            "not have; leave it out (a person adds it, or runs uet convert --allow-commands)"
        )

    def note(self) -> str:
        return f"the draft adds a {self.kind} at {self.place}: {self.value} (--allow-commands)"


def _value(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."


def _fields(model: Any, place: str) -> Iterator[Power]:
    names = set(_LEVEL_POWERS) & set(type(model).model_fields)
    data = model.model_dump(mode="json", include=names | {"completion_criteria"})
    for name, kind in _LEVEL_POWERS.items():
        value = data.get(name)
        if value in (None, [], {}):
            continue
        if isinstance(value, list):
            yield from (Power(kind, _value(item), f"{place}.{name}") for item in value)
        elif isinstance(value, dict) and name in ("env", "tool_options"):
            for key, item in value.items():
                yield Power(kind, _value({key: item}), f"{place}.{name}")
        else:
            yield Power(kind, _value(value), f"{place}.{name}")
    for criterion in data.get("completion_criteria") or []:
        if isinstance(criterion, dict) and "command" in criterion:
            yield Power("criterion command", _value(criterion["command"]), f"{place}.criteria")


def powers(bundle: Bundle) -> list[Power]:
    """Everything of `bundle` that runs a command or widens a step's reach."""
    found = list(_fields(bundle, "bundle"))
    for ws in bundle.workstreams:
        found += _fields(ws, f"workstream {ws.ws_id!r}")
        for step in ws.steps:
            place = f"step {step.step_id!r}"
            found += _fields(step, place)
            if step.context.command is not None:
                found.append(Power("command", _value(step.context.command), f"{place}.command"))
            if step.context.callable is not None:
                found.append(Power("callable", _value(step.context.callable), f"{place}.callable"))
            tool = effective_tool(bundle, ws, step)
            if not tool_traits(tool).ai:  # the others run what the bundle says
                found.append(Power("tool", _value(tool), f"{place}.tool_profile_id"))
    return found


def added_powers(draft: dict[str, Any], start: dict[str, Any] | None) -> list[Power]:
    """The draft's powers whose kind and value the deterministic conversion lacks (by value,
    wherever they are: a draft may rename and move steps)."""
    known = {(p.kind, p.value) for p in powers(Bundle.model_validate(start))} if start else set()
    return [p for p in powers(Bundle.model_validate(draft)) if (p.kind, p.value) not in known]
