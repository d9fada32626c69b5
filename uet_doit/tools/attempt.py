"""The two shapes of one attempt: the AttemptSpec that goes in, the AttemptResult that comes out.

An adapter reads the spec (`StepRequest` is its name for it) and fills a result (`ToolResult`);
the attempt routine (run/executors/attempt.py) adds its judgement to that same result. Both
travel as JSON: to a Dask worker and back, and into the state store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from uet_doit.state.records import AttemptOutcome
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.process import ToolProcesses
from uet_doit.tools.sandbox import SandboxSpec

#: the spec's fields that are paths (strings in its JSON)
_PATH_FIELDS = (
    "project_root",
    "config_root",
    "result_file",
    "stdout_path",
    "stderr_path",
    "exit_file",
    "scratch_dir",
)


@dataclass(frozen=True)
class ValidationSpec:
    command: str | tuple[str, ...]
    expected_exit_code: int = 0
    timeout: float = 600.0


@dataclass(frozen=True)
class AttemptSpec:
    """Everything a tool needs to run one attempt of one step.

    `project_root` is where the tool runs (the project, or the attempt's worktree);
    `config_root` is where router_config.json and custom adapters are found (default: the
    project root). `env` is what the step adds to the worker's environment (step env,
    router tool env, UET_*), so no secret of the coordinator travels with a spec; the
    adapter sees the spec with the child's whole environment there (run_attempt adds it).
    """

    step_id: str
    ws_id: str
    tool: str
    instruction: str
    files: tuple[str, ...]
    create_files: tuple[str, ...]
    project_root: Path
    env: Mapping[str, str]
    timeout: float
    result_file: Path  # $UET_RESULT_FILE: a tool may write {"cost_usd", "tokens_in", ...}
    stdout_path: Path
    stderr_path: Path
    attempt: int = 1
    model: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # step tool_options over router
    context: Mapping[str, Any] = field(default_factory=dict)  # command, callable, params
    exit_file: Path | None = None  # where the tool's exit code is recorded (see process.py)
    on_start: Callable[[int], None] | None = field(default=None, compare=False)
    scratch_dir: Path | None = None  # the attempt's own folder, outside what lands
    sandbox: SandboxSpec | None = None  # what the tool may write (tools/sandbox/__init__.py)
    stall_timeout: float | None = None  # no output and no file change this long: stopped
    resume_session: str | None = None  # continue this session of the tool's own
    run_id: str = ""
    bundle_id: str = ""
    config_root: Path | None = None
    validation: ValidationSpec | None = None
    max_log_bytes: int | None = None
    #: the run's tool processes (its reaper, what Ctrl-C stops); never leaves the process
    processes: ToolProcesses | None = field(default=None, compare=False, repr=False)

    @property
    def config_dir(self) -> Path:
        return self.config_root or self.project_root

    def to_json(self) -> str:
        data = dict(self.__dict__)  # flat fields: no deep copy (this runs for every attempt)
        del data["on_start"], data["processes"]
        for key in ("env", "options", "context"):  # any Mapping, as a JSON object
            data[key] = dict(data[key])
        if self.validation is not None:
            data["validation"] = dict(self.validation.__dict__)
        if self.sandbox is not None:
            data["sandbox"] = self.sandbox.to_data()
        return json.dumps(data, sort_keys=True, default=str)  # paths as strings

    def to_record(self) -> str:
        """The spec as the state store keeps it: the bundle's and tool settings' env values
        (passwords, tokens) stay out; recovery takes them from the bundle again."""
        return replace(
            self, env={k: v for k, v in self.env.items() if k.startswith("UET_")}
        ).to_json()

    @classmethod
    def from_json(cls, text: str) -> AttemptSpec:
        data = json.loads(text)
        if "workdir" in data:  # recorded before the spec and the adapters' request were one
            data["project_root"] = data.pop("workdir")
        for key in ("files", "create_files"):
            data[key] = tuple(data[key])
        for key in _PATH_FIELDS:
            if data.get(key) is not None:
                data[key] = Path(data[key])
        if data.get("validation") is not None:
            val = dict(data["validation"])
            if isinstance(val["command"], list):
                val["command"] = tuple(val["command"])
            data["validation"] = ValidationSpec(**val)
        if data.get("sandbox") is not None:
            data["sandbox"] = SandboxSpec.from_data(data["sandbox"])
        return cls(**data)


@dataclass
class AttemptResult:
    """What one attempt did, in the terms retry, breakers and the cost ledger need.

    The adapter fills what the tool said (success, exit code, message, usage); the attempt
    routine then judges it on the same object (outcome, outputs, validation, duration)."""

    success: bool
    outcome: AttemptOutcome = AttemptOutcome.RUNNING  # until the attempt routine judges it
    exit_code: int | None = None
    failure_class: FailureClass | None = None
    message: str = ""
    cost_usd: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    model: str | None = None
    cost_source: str = "none"  # reported | price_table | result_file | none
    files_changed: tuple[str, ...] = ()
    retry_after_s: float | None = None
    output_tail: str = ""
    duration_s: float = 0.0
    worker: str = ""
    notes: tuple[str, ...] = ()  # e.g. a rejected cost figure, said once in the record
    tool_session: str | None = None  # the tool's own session id (what a resume continues)
    reviewed_by: str = ""  # `tool model` of the reviewer that passed it (run/review/reviewer.py)
    saved_usd: float | None = None  # an answer from a cache: what the original attempt cost
    cache_key: str | None = None  # ... and the key it was kept under

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def failed_as(self, cls: FailureClass, message: str, **more: Any) -> AttemptResult:
        """This attempt, judged a failure after the tool ran (by a check around it)."""
        return replace(
            self,
            success=False,
            outcome=AttemptOutcome.FAILED,
            failure_class=cls,
            message=message,
            **more,
        )

    @classmethod
    def from_json(cls, text: str) -> AttemptResult:
        data = json.loads(text)
        data["outcome"] = AttemptOutcome(data["outcome"])
        if data.get("failure_class"):
            data["failure_class"] = FailureClass(data["failure_class"])
        for key in ("files_changed", "notes"):
            data[key] = tuple(data.get(key) or ())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
