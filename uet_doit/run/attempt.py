"""Doing one attempt: `run_attempt(AttemptSpec) -> AttemptResult`.

This is the whole of what a worker does for a step, on this machine or another: run the tool
in the attempt's working directory, read what it reported, check its outputs, run the step's
validation, and mask secrets in what is kept. It touches no store, budget, breaker or router
decision, so any process that has the package installed can call it.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from uet_doit.run.forecast import TOOL_PROFILES
from uet_doit.run.step_spec import ValidationSpec
from uet_doit.state.records import AttemptOutcome
from uet_doit.state.unknown_cost import REJECTED, UNREPORTED
from uet_doit.tools.adapters.base import StepRequest, ToolAdapter, ToolResult
from uet_doit.tools.failures import FailureClass, classify
from uet_doit.tools.process import ProcessResult, read_tail, run_process
from uet_doit.tools.redact import Redactor
from uet_doit.tools.sandbox import SandboxSpec
from uet_doit.tools.spawner import ReaperLost


@dataclass(frozen=True)
class AttemptSpec:
    """Everything one attempt needs, as plain JSON-serialisable data.

    `workdir` is where the tool runs (the project root, or an isolated workspace);
    `config_root` is where router_config.json and custom adapters are found. `env` holds only
    what the step adds to the worker's own environment (step env, router tool env, UET_*),
    so no secret of the coordinator travels with a spec.
    """

    run_id: str
    bundle_id: str
    ws_id: str
    step_id: str
    attempt: int
    tool: str
    instruction: str
    files: tuple[str, ...]
    create_files: tuple[str, ...]
    workdir: str
    config_root: str
    timeout: float
    stdout_path: str
    stderr_path: str
    result_file: str
    exit_file: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)  # command, callable, params
    validation: ValidationSpec | None = None
    max_log_bytes: int | None = None
    scratch_dir: str | None = None  # the tool's own writable folder (history files, temp)
    sandbox: dict[str, Any] | None = None  # tools/sandbox.py SandboxSpec.to_data()
    stall_timeout: float | None = None  # stop the tool after this long without a sign of life
    resume_session: str | None = None  # the tool's own session this attempt continues

    def to_json(self) -> str:
        data = dict(self.__dict__)  # flat fields: no deep copy (this runs for every attempt)
        if self.validation is not None:
            data["validation"] = dict(self.validation.__dict__)
        return json.dumps(data, sort_keys=True)

    def to_record(self) -> str:
        """The spec as the state store keeps it: the bundle's and tool settings' env values
        (passwords, tokens) stay out; recovery takes them from the bundle again."""
        return replace(
            self, env={k: v for k, v in self.env.items() if k.startswith("UET_")}
        ).to_json()

    @classmethod
    def from_json(cls, text: str) -> AttemptSpec:
        data = json.loads(text)
        for key in ("files", "create_files"):
            data[key] = tuple(data[key])
        if data.get("validation") is not None:
            val = dict(data["validation"])
            if isinstance(val["command"], list):
                val["command"] = tuple(val["command"])
            data["validation"] = ValidationSpec(**val)
        return cls(**data)


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did, in the terms retry, breakers and the cost ledger need."""

    success: bool
    outcome: AttemptOutcome
    exit_code: int | None = None
    failure_class: FailureClass | None = None
    message: str = ""
    cost_usd: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    model: str | None = None
    cost_source: str = "none"
    files_changed: tuple[str, ...] = ()
    retry_after_s: float | None = None
    output_tail: str = ""
    duration_s: float = 0.0
    worker: str = ""
    notes: tuple[str, ...] = ()  # e.g. a rejected cost figure, said once in the record
    tool_session: str | None = None  # the tool's own session id (what a resume continues)
    reviewed_by: str = ""  # `tool model` of the reviewer that passed it (run/review.py)

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


AdapterResolver = Callable[[str, Path], ToolAdapter]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def child_env(spec: AttemptSpec, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tool's environment: the worker's own, plus what the step adds."""
    env = dict(os.environ if base is None else base)
    env.update(spec.env)
    return env


def step_request(
    spec: AttemptSpec, env: Mapping[str, str], on_start: Callable[[int], None] | None = None
) -> StepRequest:
    return StepRequest(
        step_id=spec.step_id,
        ws_id=spec.ws_id,
        tool=spec.tool,
        instruction=spec.instruction,
        files=spec.files,
        create_files=spec.create_files,
        project_root=Path(spec.workdir),
        env=env,
        timeout=spec.timeout,
        result_file=Path(spec.result_file),
        stdout_path=Path(spec.stdout_path),
        stderr_path=Path(spec.stderr_path),
        attempt=spec.attempt,
        model=spec.model,
        options=spec.options,
        context=spec.context,
        exit_file=Path(spec.exit_file) if spec.exit_file else None,
        on_start=on_start,
        scratch_dir=Path(spec.scratch_dir) if spec.scratch_dir else None,
        sandbox=SandboxSpec.from_data(spec.sandbox) if spec.sandbox else None,
        stall_timeout=spec.stall_timeout,
        resume_session=spec.resume_session,
        run_id=spec.run_id,
    )


def run_attempt(
    spec: AttemptSpec,
    resolve: AdapterResolver | None = None,
    on_start: Callable[[int], None] | None = None,
) -> AttemptResult:
    """Run one attempt of a step and judge it; never raises for a tool's own failure."""
    from uet_doit.tools.routing import resolve_adapter

    started = time.monotonic()
    adapter = (resolve or resolve_adapter)(spec.tool, Path(spec.config_root))
    env = child_env(spec)
    result_file = Path(spec.result_file)
    folders = [result_file.parent, Path(spec.stdout_path).parent]
    _make_folders([*folders, *([Path(spec.scratch_dir)] if spec.scratch_dir else [])])
    result_file.unlink(missing_ok=True)
    _make_parent_folders(Path(spec.workdir), spec.create_files)
    try:
        raw = adapter.execute(step_request(spec, env, on_start))
    except ReaperLost as exc:
        raw = ToolResult(
            success=False,
            message=f"{exc}: the attempt's outcome is unknown, so it counts as failed",
            failure_class=FailureClass.WORKER_LOST,
        )
    return complete_attempt(spec, raw, env, time.monotonic() - started)


def _make_folders(folders: list[Path]) -> None:
    """Each folder once, made only when it is not there: a mkdir of an existing folder still
    locks its parent, which every step's log folder shares."""
    for folder in dict.fromkeys(folders):
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)


def _make_parent_folders(root: Path, create_files: tuple[str, ...]) -> None:
    """A tool may write `out/report.md` without creating `out/` first (README)."""
    _make_folders([p for p in ((root / name).parent for name in create_files) if p != root])


def adopt_attempt(
    spec: AttemptSpec, exit_code: int, resolve: AdapterResolver | None = None
) -> AttemptResult:
    """Judge an attempt whose tool finished after its runner died (its logs and exit code
    are on disk): the same reading and checks as a live attempt."""
    from uet_doit.tools.routing import resolve_adapter

    adapter = (resolve or resolve_adapter)(spec.tool, Path(spec.config_root))
    env = child_env(spec)
    proc = ProcessResult(
        argv=(),
        exit_code=exit_code,
        stdout=read_tail(Path(spec.stdout_path)),
        stderr=read_tail(Path(spec.stderr_path)),
        duration_s=0.0,
    )
    raw = adapter.read_result(step_request(spec, env), proc)
    return complete_attempt(spec, raw, env, 0.0)


def complete_attempt(
    spec: AttemptSpec, raw: ToolResult, env: Mapping[str, str], duration: float
) -> AttemptResult:
    """The one post-attempt pipeline: reported cost, outputs, validation, then redaction."""
    notes: list[str] = []
    _merge_result_file(raw, Path(spec.result_file), notes)
    _reject_bad_cost(raw, notes)
    _note_unreported(spec.tool, raw)
    if raw.success:
        _check_outputs(spec, raw)
    if raw.success and spec.validation is not None:
        _validate(spec, raw, env)
    result = AttemptResult(
        success=raw.success,
        outcome=AttemptOutcome.SUCCEEDED if raw.success else AttemptOutcome.FAILED,
        exit_code=raw.exit_code,
        failure_class=None if raw.success else (raw.failure_class or FailureClass.UNKNOWN),
        message=raw.message,
        cost_usd=raw.cost_usd,
        tokens_in=raw.tokens_in,
        tokens_out=raw.tokens_out,
        model=raw.model,
        cost_source=raw.cost_source,
        files_changed=raw.files_changed,
        retry_after_s=raw.retry_after_s,
        output_tail=raw.output_tail,
        duration_s=duration,
        worker=worker_name(),
        notes=tuple(notes),
        tool_session=raw.session_id,
    )
    return _redacted(spec, result, env)


def _merge_result_file(result: ToolResult, path: Path, notes: list[str]) -> None:
    """Shell and python tools report cost through $UET_RESULT_FILE."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, OSError):
        return
    if not isinstance(data, dict):
        return
    cost = data.get("cost_usd")
    if result.cost_usd is None and isinstance(cost, int | float) and not isinstance(cost, bool):
        result.cost_usd = float(cost)
        result.cost_source = "result_file"
    for key in ("tokens_in", "tokens_out"):
        value = data.get(key)
        if getattr(result, key) is None and isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                notes.append(f"ignored {key} {value} reported in the result file (negative)")
            else:
                setattr(result, key, value)
    if result.model is None and isinstance(data.get("model"), str):
        result.model = data["model"][:200]


def _reject_bad_cost(result: ToolResult, notes: list[str]) -> None:
    """A negative, NaN or infinite cost would lower spend or poison every sum: it is
    recorded as unknown (the budget then counts the step at its estimate)."""
    cost = result.cost_usd
    if cost is None or (math.isfinite(cost) and cost >= 0):
        return
    notes.append(f"rejected cost {cost!r} reported by {result.cost_source}: recorded as unknown")
    result.cost_usd, result.cost_source = None, REJECTED


def _note_unreported(tool: str, result: ToolResult) -> None:
    """An AI tool that finished, or was stopped at its timeout, without saying what it used
    has spent an unknown amount, not nothing."""
    said_nothing = result.cost_usd is None and result.tokens_in is None
    ran = result.success or result.failure_class == FailureClass.TIMEOUT
    if tool in TOOL_PROFILES and said_nothing and ran and result.cost_source == "none":
        result.cost_source = UNREPORTED


def _check_outputs(spec: AttemptSpec, result: ToolResult) -> None:
    root = Path(spec.workdir)
    missing = [p for p in spec.create_files if not (root / p).exists()]
    if missing:
        result.success = False
        result.failure_class = FailureClass.MISSING_OUTPUT
        result.message = "the tool finished but did not create: " + ", ".join(missing)


def _validate(spec: AttemptSpec, result: ToolResult, env: Mapping[str, str]) -> None:
    from uet_doit.tools.adapters.shell import command_argv

    val = spec.validation
    assert val is not None
    command = val.command if isinstance(val.command, str) else list(val.command)
    out = Path(spec.stdout_path)
    try:
        proc = run_process(
            command_argv(command),
            cwd=Path(spec.workdir),
            env=env,
            timeout=val.timeout,
            stdout_path=out.with_suffix(".validation.stdout"),
            stderr_path=out.with_suffix(".validation.stderr"),
        )
    except FileNotFoundError:
        shown = command if isinstance(command, str) else command[0]
        result.success = False
        result.failure_class = FailureClass.BUNDLE
        result.message = (
            f"the validation command {shown!r} does not exist; fix the step's validation "
            "(the tool's work is kept, the tool is not called again)"
        )
        return
    if proc.exit_code == val.expected_exit_code and not proc.timed_out:
        return
    if _command_missing(proc):
        result.success = False
        result.failure_class = FailureClass.BUNDLE
        result.message = (
            f"the validation command is not installed or not found ({_last_line(proc)}); "
            "fix the step's validation (the tool is not called again for this)"
        )
        return
    tail = "\n".join(proc.output.strip().splitlines()[-15:])
    shown = command if isinstance(command, str) else " ".join(command)
    got = "timed out" if proc.timed_out else f"exit code {proc.exit_code}"
    result.success = False
    result.failure_class = FailureClass.TIMEOUT if proc.timed_out else FailureClass.VALIDATION
    if not proc.timed_out and classify(proc.exit_code, proc.output) in (
        FailureClass.RATE_LIMIT,
        FailureClass.TRANSIENT,
    ):
        result.failure_class = FailureClass.VALIDATION
    result.message = f"validation `{shown}` gave {got}, expected {val.expected_exit_code}:\n{tail}"
    result.output_tail = proc.output[-4000:]


def _command_missing(proc: ProcessResult) -> bool:
    """`sh -c 'nosuchtool ...'` exits 127 with "not found": the bundle's mistake."""
    return proc.exit_code == 127 and "not found" in proc.stderr


def _last_line(proc: ProcessResult) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else f"exit code {proc.exit_code}"


def _redacted(spec: AttemptSpec, result: AttemptResult, env: Mapping[str, str]) -> AttemptResult:
    """Secrets of the child's environment never reach the logs, the store or the console,
    and no log grows past the bundle's `max_log_bytes` (head and tail kept)."""
    from uet_doit.tools.redact import DEFAULT_MAX_LOG_BYTES, cap_log

    redactor = Redactor.cached_for(env)
    cap = spec.max_log_bytes or DEFAULT_MAX_LOG_BYTES
    out, err = Path(spec.stdout_path), Path(spec.stderr_path)
    logs = (out, err, out.with_suffix(".validation.stdout"), out.with_suffix(".validation.stderr"))
    for path in logs:
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if size and redactor.secret_count:
            redactor.redact_file(path, max_bytes=cap)
        elif size > cap:
            cap_log(path, cap)
    if redactor.secret_count:
        _redact_result_file(Path(spec.result_file), redactor)
    return redacted_result(result, env)


def redacted_result(result: AttemptResult, env: Mapping[str, str]) -> AttemptResult:
    """Every text of a result with the secrets of `env` masked, file paths too (a tool can
    name a file after a secret): call it on any message made after the attempt ended."""
    redactor = Redactor.cached_for(env)
    return replace(
        result,
        message=redactor.redact(result.message),
        output_tail=redactor.redact(result.output_tail),
        model=redactor.redact(result.model) if result.model else result.model,
        notes=tuple(redactor.redact(n) for n in result.notes),
        files_changed=tuple(redactor.redact(p) for p in result.files_changed),
    )


def _redact_result_file(path: Path, redactor: Redactor) -> None:
    """What a tool or callable reported stays on disk only with its secrets masked."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return
    try:
        clean = json.dumps(redactor.redact_data(json.loads(text)))
    except ValueError:
        clean = redactor.redact(text)
    if clean != text:
        path.write_text(clean, encoding="utf-8")
