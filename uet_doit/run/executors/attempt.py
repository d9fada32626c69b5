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
from dataclasses import replace
from pathlib import Path

from uet_doit.state.records import AttemptOutcome
from uet_doit.state.unknown_cost import REJECTED, UNREPORTED
from uet_doit.tools.adapters import tool_traits
from uet_doit.tools.adapters.base import ToolAdapter, ToolTraits
from uet_doit.tools.adapters.shell import command_argv
from uet_doit.tools.attempt import AttemptResult, AttemptSpec
from uet_doit.tools.failures import FailureClass, classify
from uet_doit.tools.process import ProcessResult, ToolProcesses, read_tail, run_process
from uet_doit.tools.redact import DEFAULT_MAX_LOG_BYTES, Redactor, cap_log
from uet_doit.tools.routing import resolve_adapter
from uet_doit.tools.spawner import ReaperLost

__all__ = ["AttemptResult", "AttemptSpec", "adopt_attempt", "complete_attempt", "run_attempt"]

AdapterResolver = Callable[[str, Path], ToolAdapter]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def child_env(spec: AttemptSpec, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tool's environment: the worker's own, plus what the step adds."""
    env = dict(os.environ if base is None else base)
    env.update(spec.env)
    return env


def run_attempt(
    spec: AttemptSpec,
    resolve: AdapterResolver | None = None,
    on_start: Callable[[int], None] | None = None,
    processes: ToolProcesses | None = None,
) -> AttemptResult:
    """Run one attempt of a step and judge it; never raises for a tool's own failure."""
    started = time.monotonic()
    if processes is not None:  # the run's tool processes: what Ctrl-C stops, its reaper
        spec = replace(spec, processes=processes)
    adapter = (resolve or resolve_adapter)(spec.tool, spec.config_dir)
    env = child_env(spec)
    folders = [spec.result_file.parent, spec.stdout_path.parent]
    _make_folders([*folders, *([spec.scratch_dir] if spec.scratch_dir else [])])
    spec.result_file.unlink(missing_ok=True)
    _make_parent_folders(spec.project_root, spec.create_files)
    try:  # the adapter sees the spec with the child's whole environment
        raw = adapter.execute(replace(spec, env=env, on_start=on_start))
    except ReaperLost as exc:
        raw = AttemptResult(
            success=False,
            message=f"{exc}: the attempt's outcome is unknown, so it counts as failed",
            failure_class=FailureClass.WORKER_LOST,
        )
    return complete_attempt(spec, raw, env, time.monotonic() - started, adapter)


def _make_folders(folders: list[Path]) -> None:
    """Each folder once, made only when it is not there: a mkdir of an existing folder still
    locks its parent, which every step's log folder shares."""
    for folder in dict.fromkeys(folders):
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)


def _make_parent_folders(root: Path, create_files: tuple[str, ...]) -> None:
    """A tool may write `out/report.md` without creating `out/` first (docs/runs.md)."""
    _make_folders([p for p in ((root / name).parent for name in create_files) if p != root])


def adopt_attempt(
    spec: AttemptSpec, exit_code: int, resolve: AdapterResolver | None = None
) -> AttemptResult:
    """Judge an attempt whose tool finished after its runner died (its logs and exit code
    are on disk): the same reading and checks as a live attempt."""
    adapter = (resolve or resolve_adapter)(spec.tool, spec.config_dir)
    env = child_env(spec)
    proc = ProcessResult(
        argv=(),
        exit_code=exit_code,
        stdout=read_tail(spec.stdout_path),
        stderr=read_tail(spec.stderr_path),
        duration_s=0.0,
    )
    raw = adapter.read_result(replace(spec, env=env), proc)
    return complete_attempt(spec, raw, env, 0.0, adapter)


def complete_attempt(
    spec: AttemptSpec,
    result: AttemptResult,
    env: Mapping[str, str],
    duration: float,
    traits: ToolTraits | type[ToolTraits] | None = None,
) -> AttemptResult:
    """The one post-attempt pipeline, on the result the adapter filled: reported cost,
    outputs, validation, the outcome, then redaction. `traits`: the adapter that ran (else
    the tool's by name)."""
    notes: list[str] = list(result.notes)
    _merge_result_file(result, spec.result_file, notes)
    _reject_bad_cost(result, notes)
    _note_unreported(traits or tool_traits(spec.tool), result)
    if result.success:
        _check_outputs(spec, result)
    if result.success and spec.validation is not None:
        _validate(spec, result, env)
    if result.success:
        result.outcome, result.failure_class = AttemptOutcome.SUCCEEDED, None
    else:
        result.outcome = AttemptOutcome.FAILED
        result.failure_class = result.failure_class or FailureClass.UNKNOWN
    result.duration_s, result.worker, result.notes = duration, worker_name(), tuple(notes)
    return _redacted(spec, result, env)


def _merge_result_file(result: AttemptResult, path: Path, notes: list[str]) -> None:
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


def _reject_bad_cost(result: AttemptResult, notes: list[str]) -> None:
    """A negative, NaN or infinite cost would lower spend or poison every sum: it is
    recorded as unknown (the budget then counts the step at its estimate)."""
    cost = result.cost_usd
    if cost is None or (math.isfinite(cost) and cost >= 0):
        return
    notes.append(f"rejected cost {cost!r} reported by {result.cost_source}: recorded as unknown")
    result.cost_usd, result.cost_source = None, REJECTED


def _note_unreported(tool: ToolTraits | type[ToolTraits], result: AttemptResult) -> None:
    """An AI tool that finished, or was stopped at its timeout, without saying what it used
    has spent an unknown amount, not nothing."""
    said_nothing = result.cost_usd is None and result.tokens_in is None
    ran = result.success or result.failure_class == FailureClass.TIMEOUT
    if tool.ai and said_nothing and ran and result.cost_source == "none":
        result.cost_source = UNREPORTED


def _check_outputs(spec: AttemptSpec, result: AttemptResult) -> None:
    root = spec.project_root
    missing = [p for p in spec.create_files if not (root / p).exists()]
    if missing:
        result.success = False
        result.failure_class = FailureClass.MISSING_OUTPUT
        result.message = "the tool finished but did not create: " + ", ".join(missing)


def _validate(spec: AttemptSpec, result: AttemptResult, env: Mapping[str, str]) -> None:
    val = spec.validation
    assert val is not None
    command = val.command if isinstance(val.command, str) else list(val.command)
    out = spec.stdout_path
    try:
        proc = run_process(
            command_argv(command),
            cwd=spec.project_root,
            env=env,
            timeout=val.timeout,
            stdout_path=out.with_suffix(".validation.stdout"),
            stderr_path=out.with_suffix(".validation.stderr"),
            processes=spec.processes,
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
    redactor = Redactor.cached_for(env)
    cap = spec.max_log_bytes or DEFAULT_MAX_LOG_BYTES
    out, err = spec.stdout_path, spec.stderr_path
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
        _redact_result_file(spec.result_file, redactor)
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
