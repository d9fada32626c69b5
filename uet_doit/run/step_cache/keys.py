"""A step's cache key: a hash over named parts, kept so that a miss can be explained.

Parts are hashes only, never values: the instruction, a command or an environment variable
may hold a secret, and keys travel to shared stores. Pure: file contents are hashed by the
callable the caller passes (cache/blobs.py `digest_file` on disk, or an entry's recorded
hashes when `--dry-run` plays a hit forward).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from uet_doit.cache.blobs import MISSING, text_digest
from uet_doit.run.step_spec import StepSpec

#: bump when the meaning of a part changes: every older key then misses
KEY_FORMAT = "uet-cache-1"
UNSET = "unset"

#: part name prefixes and what `uet why` calls them
INPUT, UPSTREAM, ENV = "input:", "upstream:", "env:"
LABELS = {
    "format": "the cache key format (a uet-doit upgrade)",
    "definition": "the step's definition",
    "tool": "the tool",
    "tool_version": "the tool version",
    "instruction": "the instruction",
    "model": "the model",
    "command": "the command or callable",
    "validation": "the validation command",
    "options": "the tool options",
    "outputs": "the files it creates",
    "step_env": "the step's environment",
}


def secret_digest(value: str | None) -> str:
    """An environment value enters a key only as a salted hash (never in clear)."""
    if value is None:
        return UNSET
    return hashlib.sha256(b"uet-cache-env\0" + value.encode()).hexdigest()


@dataclass(frozen=True)
class StepKey:
    """The parts (name -> hash) and the key they make."""

    parts: dict[str, str]

    @property
    def key(self) -> str:
        return text_digest(self.parts)


@dataclass(frozen=True)
class ToolFacts:
    """What the run knows of the step's tool: its version, model and options."""

    tool: str
    version: str | None
    model: str | None
    options: Mapping[str, Any]
    tool_env: Mapping[str, str]


def step_key(
    spec: StepSpec,
    facts: ToolFacts,
    env: Mapping[str, str],
    file_hash: Callable[[str], str],
) -> StepKey:
    """The key of one step as it would run now. `env` is the environment the allow-list is
    read from; `file_hash(path)` is the content hash of a project file (or MISSING)."""
    context = spec.context
    parts: dict[str, str] = {
        "format": KEY_FORMAT,
        "definition": spec.signature,
        "tool": text_digest(facts.tool),
        "tool_version": text_digest(facts.version or UNSET),
        "instruction": text_digest(None if facts.tool == "shell" else spec.instruction),
        "model": text_digest(facts.model),
        "command": text_digest([context.get("command"), context.get("callable")]),
        "validation": text_digest(spec.validation),
        "options": text_digest(
            [dict(facts.options), context.get("params"), secret_map(facts.tool_env)]
        ),
        "outputs": text_digest(sorted(spec.create_files)),
        "step_env": text_digest(secret_map(spec.env)),
    }
    for path in sorted(set(spec.files)):
        parts[INPUT + path] = file_hash(path)
    for path in sorted(set(spec.upstream_outputs)):
        parts[UPSTREAM + path] = file_hash(path)
    for name in spec.cache_env:
        parts[ENV + name] = secret_digest(env.get(name))
    return StepKey(parts)


def secret_map(values: Mapping[str, str]) -> dict[str, str]:
    return {k: secret_digest(v) for k, v in values.items()}


@dataclass(frozen=True)
class Change:
    part: str
    before: str | None  # None: the part is new
    after: str | None  # None: the part is gone

    @property
    def what(self) -> str:
        """`the input file notes.md`, `the model`, ... (never a value)."""
        for prefix, label in (
            (INPUT, "the input file "),
            (UPSTREAM, "the upstream output "),
            (ENV, "the environment variable "),
        ):
            if self.part.startswith(prefix):
                return label + self.part.removeprefix(prefix)
        return LABELS.get(self.part, self.part)

    @property
    def how(self) -> str:
        if self.before is None:
            return "is new in the key"
        if self.after is None:
            return "is no longer in the key"
        if self.after == MISSING:
            return "is missing now"
        if self.before == MISSING:
            return "exists now (it was missing)"
        return "changed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "what": self.what,
            "change": self.how,
            "before": self.before,
            "after": self.after,
        }


def changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[Change]:
    """The parts that differ, input files and upstream outputs first (the usual reason).
    The definition hash is named only when no finer part explains it."""
    names = sorted(set(before) | set(after), key=lambda n: (not n.startswith((INPUT, UPSTREAM)), n))
    found = [
        Change(name, before.get(name), after.get(name))
        for name in names
        if before.get(name) != after.get(name)
    ]
    finer = [c for c in found if c.part != "definition"]
    return finer or found
