"""The workstream bundle: pydantic models of every field the format has. No I/O here.

Real bundles spell some fields differently from the guide (step-level `files`/`create_files`,
`description` as the instruction, `validation.command`, workstreams of `tasks`); the
`_normalise` hooks fold those spellings into one canonical shape before validation.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from uet_doit.bundle.fields import (
    MAX_TIMEOUT_S,
    BackoffStrategy,
    BudgetPolicy,
    Command,
    Conflicts,
    Delay,
    GateType,
    Id,
    Isolation,
    Line,
    Priority,
    RelPath,
    RetryClass,
    Sandbox,
    Strict,
    Timeout,
    Usd,
    _strip_ignored,
    _with_tool_spelling,
)


class Resilience(Strict):
    """Retry rules; unset fields inherit from the workstream, then the bundle."""

    max_retries: int | None = Field(None, ge=0, le=100)
    backoff_strategy: BackoffStrategy | None = None
    initial_delay: Delay | None = Field(None, description="seconds before the first retry")
    max_delay: Delay | None = Field(None, description="cap on any single wait, seconds")
    jitter: float | None = Field(None, ge=0, le=1, description="random spread, fraction of wait")
    retry_on: list[RetryClass] | None = None

    @model_validator(mode="after")
    def _delays_ordered(self) -> Resilience:
        if (
            self.initial_delay is not None
            and self.max_delay is not None
            and self.max_delay < self.initial_delay
        ):
            msg = (
                f"max_delay ({self.max_delay}) is smaller than initial_delay ({self.initial_delay})"
            )
            raise ValueError(msg)
        return self


class CircuitBreakerPolicy(Strict):
    """Per-tool breaker: `failure_threshold` consecutive failures within `timeout_seconds`
    open it; after `half_open_after` seconds one probe step is let through."""

    failure_threshold: int = Field(5, ge=1, le=1000)
    timeout_seconds: float = Field(300, gt=0, le=MAX_TIMEOUT_S)
    half_open_after: float = Field(60, ge=0, le=MAX_TIMEOUT_S)


class WorkspaceSetup(Strict):
    """How an isolated step's git worktree is prepared before its tool starts."""

    copy_files: list[str] = Field(
        default_factory=list,
        alias="copy",
        description="untracked files copied into it (e.g. .env)",
    )
    setup: Command | None = Field(None, description="run in it first, e.g. `npm ci`")
    dir: str | None = Field(
        None, description="folder of the worktrees, relative to the project (.uet/worktrees)"
    )


class BestOf(Strict):
    """`attempts: {best_of: N, tools: [...], pick: first|cheapest}`: N attempts at once,
    each in its own worktree; the first (or cheapest) one that passes lands."""

    best_of: int = Field(2, ge=1, le=8)
    tools: list[Line] = Field(
        default_factory=list, description="tools of the attempts in turn (default: the step's)"
    )
    pick: Literal["first", "cheapest"] = "first"


class Review(Strict):
    """A reviewer model: it judges sentence completion criteria, and with `steps: true`
    each step's change before it lands. Unset fields come from the next level out."""

    tool: Line | None = Field(
        None, description="the reviewer: claude, codex, gemini, aider or a custom adapter"
    )
    model: Line | None = Field(None, description="model passed to the reviewer")
    max_cost_usd: Usd | None = Field(None, description="budget of each review")
    max_fix_attempts: int | None = Field(
        None, ge=0, le=10, description="rejections sent back to the step's tool (default 1)"
    )
    steps: bool | None = Field(None, description="review each step's change before it lands")
    timeout_seconds: Timeout | None = Field(None, description="of each review (default 600)")


class StepContext(Strict):
    files: list[RelPath] = Field(default_factory=list, description="input files (file_dep)")
    create_files: list[RelPath] = Field(default_factory=list, description="outputs (targets)")
    instruction: str | None = None
    command: Command | None = Field(None, description="shell tool: list = argv, str = sh -c")
    callable: str | None = Field(None, description="python tool: 'module:function'")
    params: dict[str, Any] = Field(default_factory=dict, description="passed to the tool")

    @field_validator("callable")
    @classmethod
    def _callable_form(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[\w.]+:[\w.]+$", value):
            msg = f"callable {value!r} must look like 'package.module:function'"
            raise ValueError(msg)
        return value


class Validation(Strict):
    accepted_spellings: ClassVar[tuple[str, ...]] = ("command",)

    test_command: Command
    expected_exit_code: int = Field(0, ge=0, le=255)
    timeout: Timeout | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        data = _strip_ignored(data)
        if isinstance(data, str | list):
            return {"test_command": data}
        if isinstance(data, dict) and "command" in data:
            data = dict(data)
            if "test_command" in data:
                msg = "give either `command` or `test_command`, not both"
                raise ValueError(msg)
            data["test_command"] = data.pop("command")
        return data


class TestGate(Strict):
    __test__ = False  # not a pytest class

    type: GateType = "GATE_CUSTOM"
    name: Line | None = None
    description: str | None = None
    command: Command
    required: bool = True
    blocking: bool = True
    timeout: Timeout | None = None


class CriterionCommand(Strict):
    description: str
    command: Command
    expected_exit_code: int = Field(0, ge=0, le=255)


class CriterionFiles(Strict):
    description: str
    files_exist: list[RelPath] = Field(min_length=1)


def _criterion_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "criterion:text"
    if isinstance(value, dict):
        return "criterion:files" if "files_exist" in value else "criterion:command"
    if isinstance(value, CriterionCommand):
        return "criterion:command"
    if isinstance(value, CriterionFiles):
        return "criterion:files"
    return None


CompletionCriterion = Annotated[
    Annotated[str, Tag("criterion:text")]
    | Annotated[CriterionCommand, Tag("criterion:command")]
    | Annotated[CriterionFiles, Tag("criterion:files")],
    Discriminator(
        _criterion_kind,
        custom_error_type="criterion",
        custom_error_message=(
            "a completion criterion is a sentence, {description, command} "
            "or {description, files_exist}"
        ),
    ),
]


class Notify(Strict):
    command: list[str] = Field(min_length=1, description="argv; never run through a shell")


class CacheOptions(Strict):
    """`cache: {mode: ..., env: [...]}`: the long form of a step cache setting."""

    mode: bool | Literal["read-only"] | None = Field(
        None, description="true: look up and store; read-only: look up only; false: never"
    )
    env: list[str] = Field(
        default_factory=list,
        description="environment variables whose values (hashed, never in clear) are part "
        "of every cache key",
    )
    max_bytes: int | None = Field(
        None,
        ge=0,
        le=2**50,
        description="outputs totalling more than this are not stored, bytes (default 1 GiB)",
    )


def _cache_setting(value: Any) -> Any:
    """`cache: true | false | read-only` is the short form of `{mode: ...}`: one message for
    anything else, instead of one per member of the union."""
    if isinstance(value, bool) or value == "read-only":
        return {"mode": value}
    if value is None or isinstance(value, dict | CacheOptions):
        return value
    msg = f"cache must be true, false, read-only or {{mode: ..., env: [...]}}, not {value!r}"
    raise ValueError(msg)


#: `cache: true | false | read-only | {mode, env}` at bundle, workstream or step level
CacheSetting = Annotated[
    CacheOptions,
    BeforeValidator(
        _cache_setting,
        json_schema_input_type=bool | Literal["read-only"] | CacheOptions,
    ),
]


class Step(Strict):
    accepted_spellings: ClassVar[tuple[str, ...]] = (
        "files",
        "create_files",
        "instruction",
        "command",
        "callable",
        "params",
        "tool",
    )

    step_id: Id
    name: Line | None = None
    description: str | None = None
    tool_profile_id: Line | None = Field(
        None, description="shell, python, an AI tool, a custom adapter, or 'auto' (routed)"
    )
    depends_on: list[Id] = Field(default_factory=list)
    context: StepContext = Field(default_factory=lambda: StepContext())  # noqa: PLW0108 (mypy)
    validation: Validation | None = None
    resilience: Resilience | None = None
    timeout_seconds: Timeout | None = None
    stall_timeout_seconds: Timeout | None = Field(
        None, description="stop an attempt silent this long (no output, no file change)"
    )
    max_cost_usd: Usd | None = None
    estimated_cost_usd: Usd | None = None
    task_kind: Line | None = None
    parallel_ok: bool | None = None
    model: Line | None = Field(None, description="model name passed to the AI tool")
    tool_options: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    max_fix_attempts: int | None = Field(None, ge=0, le=10)
    isolation: Isolation | None = Field(
        None, description="worktree: its own git worktree, merged back; none: the project root"
    )
    sandbox: Sandbox | None = Field(
        None,
        description="OS sandbox of the tool: auto (the strongest available), bwrap, landlock, none",
    )
    scope: list[str] = Field(
        default_factory=list, description="globs of more paths the step may change"
    )
    workspace: WorkspaceSetup | None = None
    conflicts: Conflicts | None = Field(
        None,
        description="merge (default): land and retry conflicts; serialize: never run "
        "at the same time as a step with an overlapping scope",
    )
    cache: CacheSetting | None = Field(None, description="step cache: true, false, read-only")
    attempts: BestOf | None = Field(
        None, description="best-of-N: attempts run at once in their own worktrees"
    )
    skip: Line | None = Field(
        None,
        description="why the step is not run (e.g. 'done': done in the plan it was converted "
        "from); its dependents run as if it had succeeded",
    )
    review: Review | None = None
    doc_id: Line | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        """Fold the step-level spellings real bundles use into `context`."""
        data = _with_tool_spelling(data)
        if not isinstance(data, dict):
            return data
        moved = [
            k
            for k in ("files", "create_files", "instruction", "command", "callable", "params")
            if k in data
        ]
        if moved:
            context = data.get("context")
            context = dict(context) if isinstance(context, dict) else {}
            for key in moved:
                if key in context:
                    msg = f"`{key}` is given both on the step and in its context; keep one"
                    raise ValueError(msg)
                context[key] = data.pop(key)
            data["context"] = context
        return data

    @property
    def instruction(self) -> str:
        """What the tool is asked to do: the context's instruction, else the description."""
        return self.context.instruction or self.description or self.name or self.step_id

    @property
    def title(self) -> str:
        return self.name or self.step_id


class Workstream(Strict):
    accepted_spellings: ClassVar[tuple[str, ...]] = (
        "tasks",
        "files_scope",
        "files_create",
        "acceptance_tests",
        "capability",
        "tool_profile",
        "tool",
    )

    ws_id: Id
    name: Line | None = None
    description: str | None = None
    kind: Line | None = None
    priority: Priority | None = None
    parallel_ok: bool = True
    estimated_context_tokens: int | None = Field(None, ge=0, le=10**9)
    depends_on: list[Id] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    tool_profile_id: Line | None = Field(None, description="default tool of its steps")
    resilience: Resilience | None = None
    timeout_seconds: Timeout | None = Field(None, description="default step timeout")
    stall_timeout_seconds: Timeout | None = Field(
        None, description="stop an attempt silent this long (no output, no file change)"
    )
    circuit_breaker: CircuitBreakerPolicy | None = None
    max_cost_usd: Usd | None = None
    on_budget_exceeded: BudgetPolicy | None = None
    budget_warning_pct: float | None = Field(None, gt=0, le=100)
    test_gates: list[TestGate] = Field(default_factory=list)
    completion_criteria: list[CompletionCriterion] = Field(default_factory=list)
    isolation: Isolation | None = Field(None, description="default isolation of its steps")
    sandbox: Sandbox | None = Field(None, description="default sandbox of its steps")
    workspace: WorkspaceSetup | None = None
    conflicts: Conflicts | None = None
    cache: CacheSetting | None = Field(None, description="default step cache of its steps")
    review: Review | None = Field(None, description="reviewer of its criteria (and steps)")
    doc_id: Line | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        """A workstream written as `tasks` (no steps) becomes one step doing all its tasks."""
        data = _with_tool_spelling(data)
        if not isinstance(data, dict):
            return data
        legacy = {
            k: data.pop(k)
            for k in (
                "tasks",
                "files_scope",
                "files_create",
                "acceptance_tests",
                "capability",
                "tool_profile",
            )
            if k in data
        }
        if not legacy:
            return data
        if "tool_profile" in legacy:
            data.setdefault("metadata", {})
            data["metadata"] = {**data["metadata"], "tool_profile": legacy.pop("tool_profile")}
        if data.get("steps"):
            if any(k in legacy for k in ("tasks", "files_scope", "files_create")):
                msg = "give either `steps` or `tasks`/`files_scope`/`files_create`, not both"
                raise ValueError(msg)
            return data
        from uet_doit.bundle.legacy_tasks import tasks_to_step  # lazy: start-up time

        data["steps"] = [tasks_to_step(data.get("ws_id"), legacy, data)]
        return data

    @property
    def title(self) -> str:
        return self.name or self.ws_id


class Dependencies(Strict):
    """Prerequisites a bundle names for people; shown, not enforced."""

    external: list[str] = Field(default_factory=list)
    internal: list[str] = Field(default_factory=list)


class Bundle(Strict):
    bundle_id: Id
    bundle_name: Line | None = None
    version: Line | None = None
    description: str | None = None
    estimated_duration_hours: float | None = Field(None, ge=0, le=100_000)
    workstreams: list[Workstream] = Field(min_length=1)
    tool_profile_id: Line | None = Field(None, description="default tool of every step")
    resilience: Resilience | None = None
    timeout_seconds: Timeout | None = None
    stall_timeout_seconds: Timeout | None = Field(
        None, description="stop an attempt silent this long (no output, no file change)"
    )
    circuit_breaker: CircuitBreakerPolicy | None = None
    max_cost_usd: Usd | None = None
    on_budget_exceeded: BudgetPolicy | None = None
    budget_warning_pct: float | None = Field(None, gt=0, le=100)
    max_log_bytes: int | None = Field(
        None,
        ge=4096,
        le=2**40,
        description="cap on each attempt or gate log, bytes: head and tail kept (default 50 MB)",
    )
    notify: Notify | None = None
    test_gates: list[TestGate] = Field(default_factory=list)
    completion_criteria: list[CompletionCriterion] = Field(default_factory=list)
    dependencies: Dependencies | None = None
    cache: CacheSetting | None = Field(
        None, description="default step cache; {env: [...]} names variables keys include"
    )
    validation: dict[str, Any] | None = Field(
        None, description="targets for people (e.g. required_tests); kept, not enforced"
    )
    isolation: Isolation | None = Field(None, description="default isolation of every step")
    sandbox: Sandbox | None = Field(None, description="default sandbox of every step")
    workspace: WorkspaceSetup | None = None
    conflicts: Conflicts | None = None
    review: Review | None = Field(None, description="reviewer of sentence criteria (and steps)")
    doc_id: Line | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @property
    def task_basename(self) -> str:
        """The doit group task: `phase-k-plus` -> `phase_k_plus`."""
        return self.bundle_id.lower().replace("-", "_").replace(".", "_")

    def steps(self) -> list[tuple[Workstream, Step]]:
        return [(ws, step) for ws in self.workstreams for step in ws.steps]
