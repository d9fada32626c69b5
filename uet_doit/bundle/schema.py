"""JSON Schema export, and pydantic errors turned into problems a person can act on."""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from uet_doit.bundle.model import Bundle
from uet_doit.errors import Problem

SCHEMA_ID = "https://uet-doit.invalid/bundle.schema.json"


def bundle_json_schema() -> dict[str, Any]:
    """The schema editors use to complete bundles (committed as bundle/bundle.schema.json)."""
    schema = Bundle.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "uet-doit workstream bundle"
    _add_accepted_spellings(schema)
    # allow the editor hints and comment keys the loader ignores, on every object
    for definition in [schema, *schema.get("$defs", {}).values()]:
        if definition.get("additionalProperties") is False:
            definition["patternProperties"] = {"^(\\$schema|x-.*|_comment.*)$": {}}
    return schema


_STRINGS = {"type": "array", "items": {"type": "string"}}
_COMMAND = {"anyOf": [{"type": "string"}, _STRINGS]}
_SPELLINGS: dict[str, dict[str, Any]] = {
    "Step": {
        "files": {**_STRINGS, "description": "same as context.files"},
        "create_files": {**_STRINGS, "description": "same as context.create_files"},
        "instruction": {"type": "string", "description": "same as context.instruction"},
        "command": {**_COMMAND, "description": "same as context.command"},
        "callable": {"type": "string", "description": "same as context.callable"},
        "params": {"type": "object", "description": "same as context.params"},
        "tool": {"type": "string", "description": "same as tool_profile_id"},
    },
    "Workstream": {
        "tasks": {**_STRINGS, "description": "task list; becomes one step doing them all"},
        "files_scope": {**_STRINGS, "description": "input files of the tasks step"},
        "files_create": {**_STRINGS, "description": "files the tasks step creates"},
        "acceptance_tests": {
            **_STRINGS,
            "description": "commands validate; sentences are criteria",
        },
        "capability": {"type": "string", "description": "task_kind of the tasks step"},
        "tool_profile": {"type": "string"},
        "tool": {"type": "string", "description": "same as tool_profile_id"},
    },
    "Validation": {"command": {**_COMMAND, "description": "same as test_command"}},
}


def _add_accepted_spellings(schema: dict[str, Any]) -> None:
    """Real bundles' spellings (step-level `files`, `validation.command`, ...) are valid too."""
    defs = schema.get("$defs", {})
    for name, extra in _SPELLINGS.items():
        definition = defs.get(name)
        if definition is None:
            continue
        definition.setdefault("properties", {}).update(extra)
        if name == "Validation":
            definition.pop("required", None)
            definition["anyOf"] = [{"required": ["test_command"]}, {"required": ["command"]}]
        if name == "Workstream":
            definition.pop("required", None)
            definition["required"] = ["ws_id"]


def schema_text() -> str:
    return json.dumps(bundle_json_schema(), indent=2, sort_keys=True) + "\n"


def json_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (
            ":" in part or part in ("str", "list[str]") or part.startswith(("function-", "tagged-"))
        ):
            continue  # union / tag markers pydantic adds, not places in the file
        else:
            out += f".{part}" if out else part
    return out or "$"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model whose keys live at `loc`, for did-you-mean on unknown keys."""
    current: Any = Bundle
    for part in loc:
        if isinstance(part, int) or ":" in str(part):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if isinstance(found, type) and issubclass(found, BaseModel):
                return found
        return None
    return annotation


def _value_at(data: Any, loc: tuple[int | str, ...]) -> Any:
    for part in loc:
        in_dict = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if in_dict or in_list:
            data = data[part]
        else:
            return None
    return data


def problems_from_validation(exc: ValidationError, name: str, data: Any) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        hint: str | None = None
        if kind == "extra_forbidden":
            key = str(loc[-1])
            model = _model_at(loc[:-1])
            known = (
                sorted({*model.model_fields, *getattr(model, "accepted_spellings", ())})
                if model
                else []
            )
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            message = f"unknown key {key!r}"
            if close:
                hint = f"did you mean {close[0]!r}?"
            elif 0 < len(known) <= 8:
                hint = f"allowed keys here: {', '.join(known)}; prefix private keys with 'x-'"
            else:  # a long list would push the other problems off the screen
                hint = "`uet schema` lists the allowed keys; prefix private keys with 'x-'"
        elif kind == "missing":
            message = f"required key {str(loc[-1])!r} is missing"
            loc = loc[:-1]
        elif kind == "value_error":
            message = str(err["msg"]).removeprefix("Value error, ")
        else:
            got = _value_at(data, loc)
            shown = json.dumps(got, default=str)[:60] if got is not None else None
            message = err["msg"] + (f" (got {shown})" if shown is not None else "")
            if kind == "literal_error" and isinstance(got, str):
                choices = re.findall(r"'([^']*)'", str(err["msg"]))
                upper = got.upper()  # `lint` for GATE_LINT, `LINEAR` for linear
                close = [c for c in choices if c.upper() == upper or c.endswith(f"_{upper}")]
                close = close or difflib.get_close_matches(got, choices, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else None
        where = json_path(_as_written(loc, data))
        if (where, message) in seen:
            continue
        seen.add((where, message))
        problems.append(Problem(name, where, message, hint))
    return problems


def _as_written(loc: tuple[int | str, ...], data: Any) -> tuple[int | str, ...]:
    """`steps[0].context.files` where the user wrote `files` on the step: say so."""
    if "context" not in loc:
        return loc
    at = loc.index("context")
    owner = _value_at(data, loc[:at])
    if at + 1 < len(loc) and isinstance(owner, dict) and loc[at + 1] in owner:
        return (*loc[:at], *loc[at + 1 :])
    return loc


class LineFinder:
    """Lines of many JSON paths in one text, which is composed once (composing per problem
    made a bundle with thousands of problems quadratic in its size)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._node: Any = None
        self._composed = False

    def _root(self) -> Any:
        if not self._composed:
            self._composed = True
            # libyaml first (fast, and deep nesting costs no stack); the Python parser also
            # reads JSON escapes libyaml refuses, such as a lone surrogate
            for loader in (getattr(yaml, "CSafeLoader", yaml.SafeLoader), yaml.SafeLoader):
                try:
                    self._node = yaml.compose(self._text, Loader=loader)
                    break
                except (yaml.YAMLError, RecursionError):
                    continue
        return self._node

    def line(self, where: str) -> int | None:
        """The line `where` starts on, or the deepest part of it the text has."""
        parts: list[str | int] = []
        for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", where.split(" ", maxsplit=1)[0]):
            parts.append(int(index) if index else key)
        if not parts or parts == ["$"]:
            return None
        node = self._root()
        if node is None:
            return None
        line = None
        for part in parts:
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                for key_node, value_node in node.value:
                    if key_node.value == part:
                        line = key_node.start_mark.line + 1
                        node = value_node
                        break
                else:
                    return line
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and part < len(node.value)
            ):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line
