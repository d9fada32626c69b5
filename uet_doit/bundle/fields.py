"""The building blocks of the bundle model: ids, one-line strings, paths, commands, bounds,
and the strict base model (unknown keys are errors). Pure validation, no I/O."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*\Z"  # \Z: `$` would let a final newline in
_ID_RE = re.compile(ID_PATTERN)
#: ids name doit tasks, files under .uet/ and lines on a terminal: a bound keeps them usable
MAX_ID_LENGTH = 128
#: the longest timeout anything may have (a week): `1e308` would overflow the clocks
MAX_TIMEOUT_S = 7 * 24 * 3600.0
#: the longest wait between retries (a day)
MAX_DELAY_S = 24 * 3600.0
#: the largest budget or cost estimate, in dollars
MAX_USD = 1_000_000.0
#: gate types: the guide's four, and GATE_ACCEPTANCE (what `uet import` makes of acceptance tests)
GateType = Literal["GATE_LINT", "GATE_UNIT", "GATE_DOCS", "GATE_CUSTOM", "GATE_ACCEPTANCE"]

BackoffStrategy = Literal["exponential", "linear", "constant"]
BudgetPolicy = Literal["pause_and_notify", "fail", "warn"]
RetryClass = Literal[
    "timeout",
    "rate_limit",
    "transient_error",
    "validation_failed",
    "missing_output",
    "unknown",
    "workspace_setup",
    "scope_violation",
    "merge_conflict",
    "stalled",
]
Priority = Literal["foreground", "background", "critical", "high", "medium", "low"]
Isolation = Literal["worktree", "none"]
Sandbox = Literal["auto", "bwrap", "landlock", "none"]
Conflicts = Literal["merge", "serialize"]


def _check_command(value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    msg = "a command is a non-empty string (run by sh -c) or a list of strings (argv)"
    raise ValueError(msg)


Command = Annotated[str | list[str], BeforeValidator(_check_command)]

#: keys allowed anywhere without being fields: editor schema hints and comments
_IGNORED_KEY = re.compile(r"^(\$schema|x-.*|_comment.*)$")


#: a key that may be ignored, among keys joined by NUL: one search per object (most have
#: none and are returned as they are); a hit is then decided key by key by _IGNORED_KEY
_IGNORED_AMONG = re.compile(r"(?:\A|\0)(?:\$schema|x-|_comment)")


def _strip_ignored(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    # a key that is not text is never ignored (the schema refuses it)
    if not _IGNORED_AMONG.search("\0".join(k for k in data if isinstance(k, str))):
        return data
    return {k: v for k, v in data.items() if not (isinstance(k, str) and _IGNORED_KEY.match(k))}


def _with_tool_spelling(data: Any) -> Any:
    """A copy without ignored keys, with `tool` read as `tool_profile_id` (older bundles)."""
    data = _strip_ignored(data)
    if not isinstance(data, dict):
        return data
    data = dict(data)
    if "tool" in data and "tool_profile_id" not in data:
        data["tool_profile_id"] = data.pop("tool")
    return data


class Strict(BaseModel):
    """Base of every bundle model: unknown keys are errors (with a did-you-mean upstream)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored_keys(cls, data: Any) -> Any:
        return _strip_ignored(data)


def _check_id(value: str) -> str:
    if len(value) > MAX_ID_LENGTH:
        msg = f"an id is at most {MAX_ID_LENGTH} characters (this one has {len(value)})"
        raise ValueError(msg)
    if not _ID_RE.match(value):
        msg = (
            f"{value!r} is not a valid id: use letters, digits, '-', '_' or '.', "
            "starting with a letter or digit (no spaces or ':')"
        )
        raise ValueError(msg)
    return value


Id = Annotated[
    str, AfterValidator(_check_id), Field(json_schema_extra={"maxLength": MAX_ID_LENGTH})
]

#: control characters (tab and newline too) and lone surrogates: never in a one-line value
_NOT_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _check_line(value: str) -> str:
    """Names, tools and models are printed on one terminal line and passed in argv."""
    if _NOT_ONE_LINE.search(value):
        msg = f"{value[:60]!r} must be one line of text, without tabs or control characters"
        raise ValueError(msg)
    return value


def _check_path(value: str) -> str:
    """A path is given to tools on their command line: it must not read as an option there,
    nor carry a line break that splits a prompt's file list or a log line."""
    if _NOT_ONE_LINE.search(value):
        msg = f"path {value[:60]!r} contains a line break, tab or control character"
        raise ValueError(msg)
    if value.startswith("-"):
        msg = f"path {value!r} starts with '-', so a tool would read it as an option: rename it"
        raise ValueError(msg)
    return value


Line = Annotated[str, AfterValidator(_check_line)]
RelPath = Annotated[str, AfterValidator(_check_path)]
Timeout = Annotated[float, Field(gt=0, le=MAX_TIMEOUT_S, description="seconds, at most a week")]
Delay = Annotated[float, Field(ge=0, le=MAX_DELAY_S, description="seconds, at most a day")]
Usd = Annotated[float, Field(ge=0, le=MAX_USD, description="US dollars")]
