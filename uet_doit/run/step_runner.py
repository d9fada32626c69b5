"""The doit action of every step: route, breaker, budget, attempts with retry, validation.

`StepAction` is a module-level callable class holding only plain data, so `-P process`
can pickle it. Each attempt is recorded in state.db before and after it runs; a success is
journaled with a fingerprint of the step's files, so a run killed after the tool finished
but before doit saved its state is recognised on resume and not run twice.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import multiprocessing.util
import os
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed

from uet_doit.bundle.model import DEFAULT_TIMEOUT_SECONDS
from uet_doit.errors import UetError
from uet_doit.run.breakers import BreakerBook
from uet_doit.run.budget import CostLedger
from uet_doit.run.recovery import left_behind
from uet_doit.run.resilience import TOOL_FAILURES, Clock, SystemClock
from uet_doit.run.step_spec import (
    LOCAL_TOOLS,
    RUN_ID_ENV,
    STOP_ON_FAILURE_ENV,
    StepNotStarted,
    StepPaused,
    StepSpec,
    fingerprint,
    run_id_for,
)
from uet_doit.state.store import RunStore
from uet_doit.tools.adapters.base import StepRequest, ToolAdapter, ToolResult
from uet_doit.tools.failures import FailureClass, classify
from uet_doit.tools.process import run_process
from uet_doit.tools.routing import RouterConfig, ToolSettings, get_adapter, load_router_config


#: tools whose failures are the step's own (a breaker on them only when a bundle asks)
class _WorkerSetup:
    """Runs in every forked doit worker right after the fork (multiprocessing's
    after-fork hook): the worker dies with the runner, so none lingers blocked on a dead
    queue, and SIGTERM (doit's Ctrl-C clean-up) becomes KeyboardInterrupt, which stops the
    running tool. Tools run in their own session and finish even if the worker dies."""

    def __call__(self, _: object) -> None:
        import ctypes

        parent = os.getppid()

        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, interrupt)
        with contextlib.suppress(OSError, AttributeError):  # prctl is Linux only
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the runner died before prctl took effect
            os._exit(1)


_WORKER_SETUP = _WorkerSetup()
multiprocessing.util.register_after_fork(_WORKER_SETUP, _WORKER_SETUP)


class StepAction:
    """doit python-action: returns a dict of values on success, TaskFailed on failure."""

    # doit inspects every action's signature to pick keyword arguments; say "none" up front
    __signature__ = inspect.Signature()

    def __init__(self, spec: StepSpec) -> None:
        self.spec = spec

    def __repr__(self) -> str:  # shown by `doit info`
        return f"<uet step {self.spec.step_id} via {self.spec.tool}>"

    def __call__(self) -> dict[str, Any] | TaskFailed:
        try:
            return StepExecution(self.spec, SystemClock()).run()
        except UetError as exc:  # e.g. a broken router_config.json: a message, no traceback
            return TaskFailed(f"{self.spec.step_id}: {exc.render()}")


class StepExecution:
    """One step's execution in one run; separate from StepAction so tests inject a clock."""

    def __init__(self, spec: StepSpec, clock: Clock, store: RunStore | None = None) -> None:
        self.spec = spec
        self.clock = clock
        self.root = Path(spec.project_root)
        self.store = store or RunStore.shared(self.root)
        self.run_id = run_id_for(spec.bundle_id)
        self.paths = (*spec.files, *spec.create_files)
        self.tool = spec.tool if spec.tool != "auto" else "auto"
        self.path = os.environ.get("PATH")

        self.ledger = CostLedger(self.store)

    def _status(self, status: str, message: str | None = None) -> None:
        self.store.set_step_status(
            self.run_id, self.spec.step_id, status, message, self.spec.ws_id, self.tool
        )

    # -- the whole step -------------------------------------------------------------------
    def run(self) -> dict[str, Any] | TaskFailed:
        spec, store = self.spec, self.store
        store.ensure_run(self.run_id, spec.bundle_id)
        done = left_behind(self)
        if done is not None:
            return done
        stopped = self._stopped_by_failure()
        if stopped is not None:
            self._status("not_started", stopped)
            return StepNotStarted(f"not started: {stopped}")
        chain, why = self._tool_chain()
        if not chain:
            message = f"no tool for this step: {why}"
            self._status("failed", f"permanent: {message}")
            return TaskFailed(f"{spec.step_id}: {message}")
        failure: TaskFailed | None = None
        previous: str | None = None
        for tool in chain:
            self.tool = tool
            outcome = self._run_with_tool(previous)
            if isinstance(outcome, dict):
                return outcome
            failure, fall_back = outcome
            if not fall_back:
                return failure
            previous = tool
            if tool != chain[-1]:
                store.event(
                    self.run_id,
                    "fallback",
                    spec.step_id,
                    from_tool=tool,
                    to_tool=chain[chain.index(tool) + 1],
                )
        assert failure is not None
        return failure

    def _run_with_tool(self, fallback_from: str | None) -> dict[str, Any] | tuple[TaskFailed, bool]:
        """Attempts of one tool with retries and the fix loop. On failure, also says whether
        the next tool of the route may take over (permanent failure or open breaker)."""
        spec, store, tool = self.spec, self.store, self.tool
        breakers = BreakerBook(store)
        uses_breaker = spec.breaker_explicit or tool not in LOCAL_TOOLS
        first = self._previous_attempts()
        attempt_no, fix_round, instruction = first, 0, spec.instruction
        while True:
            attempt_no += 1
            if uses_breaker:
                allowed, _probe, reason = breakers.admit(tool, spec.breaker, self.clock.now())
                if not allowed:
                    self._record_refusal(attempt_no, FailureClass.CIRCUIT_OPEN, reason)
                    return TaskFailed(f"{spec.step_id}: {reason}"), True
            reservation, refusal = self._reserve_budget()
            if refusal is not None:
                return refusal, False
            try:
                result = self._attempt(attempt_no, instruction, fallback_from)
            finally:
                self.ledger.release(reservation)
            self._after_spend(result)
            if uses_breaker:
                tool_failed = not result.success and result.failure_class in TOOL_FAILURES
                if result.success or tool_failed:
                    now = self.clock.now()
                    state = breakers.record(tool, spec.breaker, result.success, now)
                    if state == "open" and tool_failed:
                        store.event(self.run_id, "breaker_open", spec.step_id, tool=tool)
            if result.success:
                self._status(
                    "succeeded",
                    f"by {tool} (fallback from {fallback_from})" if fallback_from else None,
                )
                return {"run_id": self.run_id, "attempts": attempt_no - first, "tool": tool}
            cls = result.failure_class or FailureClass.UNKNOWN
            if cls == FailureClass.VALIDATION and fix_round < self._fix_attempts():
                fix_round += 1
                instruction = (
                    f"{spec.instruction}\n\nThe validation command failed after your change. "
                    f"Fix the problem. Its output:\n{result.output_tail[-3000:]}"
                )
                store.event(self.run_id, "fix_attempt", spec.step_id, round=fix_round)
                continue
            retries_used = attempt_no - first - fix_round
            if spec.retry.should_retry(cls, retries_used):
                wait = spec.retry.delay(retries_used, result.retry_after_s)
                self._status("retrying", f"{cls}: waiting {wait:.1f}s")
                store.event(
                    self.run_id, "retry_wait", spec.step_id, seconds=wait, failure_class=str(cls)
                )
                self.clock.sleep(wait)
                continue
            message = result.message  # already redacted by _scrub
            self._status("failed", f"{cls}: {message}")
            failed = TaskFailed(
                f"{spec.step_id} failed ({cls}) after {attempt_no - first} attempt(s) "
                f"with {tool}: {message}"
            )
            return failed, cls in (FailureClass.PERMANENT, FailureClass.CIRCUIT_OPEN)

    def _stopped_by_failure(self) -> str | None:
        """`uet run` without -c stops launching steps after the first failure (doit runs in
        --continue mode so that steps outside an exhausted budget can go on)."""
        if os.environ.get(STOP_ON_FAILURE_ENV) != "1":
            return None
        row = self.store.conn.execute(
            "SELECT step_id FROM run_steps WHERE run_id=? AND status='failed' LIMIT 1",
            (self.run_id,),
        ).fetchone()
        if row is None:
            return None
        return f"step {row[0]} failed (uet run -c keeps going after failures)"

    def _reserve_budget(self) -> tuple[int | None, TaskFailed | None]:
        """Before each attempt: every enclosing budget must have room for its estimate."""
        spec = self.spec
        if not spec.budgets:
            return None, None
        estimate = self.ledger.estimate(spec.estimated_cost_usd, self.tool)
        reservation, over = self.ledger.reserve(
            spec.bundle_id, spec.ws_id, spec.step_id, self.run_id, spec.budgets, estimate
        )
        if over is None:
            return reservation, None
        data = {
            "budget": over.budget.label,
            "spent": over.spent,
            "limit": over.budget.limit,
            "reserved": over.reserved,
            "estimate": estimate,
            "policy": over.budget.policy,
            "message": over.message,
        }
        if over.budget.policy == "warn":
            self.store.event(self.run_id, "budget_exceeded", spec.step_id, **data)
            return reservation, None
        if over.budget.policy == "fail":
            self.store.event(self.run_id, "budget_failed", spec.step_id, **data)
            self._status("failed", f"budget_exceeded: {over.message}")
            return None, TaskFailed(f"{spec.step_id} failed (budget_exceeded): {over.message}")
        self.store.event(self.run_id, "budget_paused", spec.step_id, **data)
        self._status("paused", over.message)
        return None, StepPaused(f"{spec.step_id} paused: {over.message}")

    def _after_spend(self, result: ToolResult) -> None:
        """Warnings at budget_warning_pct, and a step dearer than its own budget noted."""
        spec = self.spec
        if not spec.budgets or not result.cost_usd:
            return
        self.ledger.warn_crossings(self.run_id, spec.bundle_id, spec.budgets)
        for budget in spec.budgets:
            if budget.scope == "step":
                spent = self.ledger.spent(spec.bundle_id, budget)
                if spent > budget.limit:
                    self.store.event(
                        self.run_id,
                        "over_budget",
                        spec.step_id,
                        budget=budget.label,
                        spent=spent,
                        limit=budget.limit,
                    )

    def _tool_chain(self) -> tuple[list[str], str]:
        """The step's tool, then the fallbacks its route names; `auto` is routed outright."""
        tool = self.spec.tool
        if tool in LOCAL_TOOLS:
            return [tool], ""
        from uet_doit.tools.routing import availability, route_step

        config = router_config(self.root)
        files = (*self.spec.files, *self.spec.create_files)
        if tool == "auto":
            decision = route_step(
                self.spec.task_kind, files, config, availability(config, self.root, self.path)
            )
            return list(decision.tools), decision.reason
        named = route_step(self.spec.task_kind, files, config, lambda _: True)
        if tool in named.tools:
            return [tool, *[t for t in named.tools if t != tool]], named.reason
        return [tool], ""

    def _fix_attempts(self) -> int:
        if self.spec.max_fix_attempts is not None:
            return self.spec.max_fix_attempts
        configured = self.settings().max_fix_attempts
        if configured is not None:
            return configured
        return 0 if self.tool in LOCAL_TOOLS else 1

    def _previous_attempts(self) -> int:
        row = self.store.conn.execute(
            "SELECT coalesce(max(attempt), 0) FROM attempts WHERE run_id=? AND step_id=?",
            (self.run_id, self.spec.step_id),
        ).fetchone()
        return int(row[0])

    def _record_refusal(self, attempt_no: int, cls: FailureClass, reason: str) -> None:
        out, err, _ = self._log_paths(attempt_no)
        attempt_id = self.store.begin_attempt(
            self.run_id,
            self.spec.bundle_id,
            self.spec.ws_id,
            self.spec.step_id,
            self.tool,
            attempt_no,
            str(out),
            str(err),
        )
        self.store.finish_attempt(attempt_id, "failed", failure_class=str(cls), message=reason)
        self._status("failed", f"{cls}: {reason}")

    def _log_paths(self, attempt_no: int) -> tuple[Path, Path, Path]:
        # one folder per run, not per step: a folder per step is a mkdir on every attempt
        base = self.root / ".uet" / "runs" / self.run_id / "steps" / self.spec.step_id
        return (
            base.with_name(f"{self.spec.step_id}.{attempt_no}.stdout"),
            base.with_name(f"{self.spec.step_id}.{attempt_no}.stderr"),
            base.with_name(f"{self.spec.step_id}.{attempt_no}.result.json"),
        )

    # -- one attempt ----------------------------------------------------------------------
    def _attempt(
        self, attempt_no: int, instruction: str, fallback_from: str | None = None
    ) -> ToolResult:
        spec, store = self.spec, self.store
        out, err, result_file = self._log_paths(attempt_no)
        out.parent.mkdir(parents=True, exist_ok=True)
        exit_file = out.with_suffix(".exit")
        exit_file.unlink(missing_ok=True)
        attempt_id = store.begin_attempt(
            self.run_id,
            spec.bundle_id,
            spec.ws_id,
            spec.step_id,
            self.tool,
            attempt_no,
            str(out),
            str(err),
            exit_file=str(exit_file),
            fallback_from=fallback_from,
        )
        env = self._env(attempt_no, result_file)
        request = self._request(
            attempt_no,
            instruction,
            env,
            out,
            err,
            result_file,
            exit_file,
            lambda pid: store.set_attempt_process(attempt_id, pid),
        )
        try:
            result_file.unlink(missing_ok=True)
            result = self._execute_in_slot(request)
            result = self._check_result(result, env, out, err, result_file)
            self._scrub(result, request.env, out, err)
        except BaseException as exc:
            store.finish_attempt(
                attempt_id,
                "interrupted",
                failure_class="interrupted",
                message=f"interrupted ({type(exc).__name__})",
            )
            self._status("interrupted")
            raise
        self._finish(attempt_id, result)
        return result

    def _scrub(self, result: ToolResult, env: Mapping[str, str], out: Path, err: Path) -> None:
        """Secrets in the child's environment never reach logs, the store or the console."""
        from uet_doit.tools.redact import Redactor

        redactor = Redactor.cached_for(env)
        if not redactor.secret_count:
            return  # nothing secret in this environment (key shapes are masked on display)
        for path in (
            out,
            err,
            out.with_suffix(".validation.stdout"),
            err.with_suffix(".validation.stderr"),
        ):
            with contextlib.suppress(OSError):
                if path.stat().st_size:
                    redactor.redact_file(path)
        result.message = redactor.redact(result.message)
        result.output_tail = redactor.redact(result.output_tail)

    def _finish(self, attempt_id: int, result: ToolResult) -> None:
        self.store.finish_attempt(
            attempt_id,
            "succeeded" if result.success else "failed",
            exit_code=result.exit_code,
            failure_class=str(result.failure_class or "") or None,
            message=result.message[:2000],
            cost_usd=result.cost_usd,
            tokens_in=result.tokens_in,
            tokens_out=result.tokens_out,
            model=result.model,
            cost_source=result.cost_source,
            signature=self.spec.signature,
            fingerprint=fingerprint(self.root, self.paths) if result.success else None,
        )

    def _env(self, attempt_no: int, result_file: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.spec.env)
        env.update(
            {
                "UET_RESULT_FILE": str(result_file),
                RUN_ID_ENV: self.run_id,
                "UET_STEP_ID": self.spec.step_id,
                "UET_WS_ID": self.spec.ws_id,
                "UET_ATTEMPT": str(attempt_no),
                "UET_PROJECT_ROOT": str(self.root),
            }
        )
        return env

    def _request(
        self,
        attempt_no: int,
        instruction: str,
        env: dict[str, str],
        out: Path,
        err: Path,
        result_file: Path,
        exit_file: Path | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> StepRequest:
        spec = self.spec
        settings = self.settings()
        options: dict[str, Any] = {"args": list(settings.args)} if settings.args else {}
        options.update(spec.tool_options)
        return StepRequest(
            step_id=spec.step_id,
            ws_id=spec.ws_id,
            tool=self.tool,
            instruction=instruction,
            files=spec.files,
            create_files=spec.create_files,
            project_root=self.root,
            env={**settings.env, **env},
            timeout=self.timeout(),
            result_file=result_file,
            stdout_path=out,
            stderr_path=err,
            attempt=attempt_no,
            model=spec.model or settings.model,
            options=options,
            context=spec.context,
            exit_file=exit_file,
            on_start=on_start,
        )

    def settings(self) -> ToolSettings:
        """router_config.json `tools.<name>`: model, args, env, max_parallel, timeout."""
        if self.tool in LOCAL_TOOLS:
            return ToolSettings()
        return router_config(self.root).tool(self.tool)

    def timeout(self) -> float:
        """The step's own timeout, else its tool's in router_config.json, else the default."""
        return self.spec.timeout or self.settings().timeout_seconds or DEFAULT_TIMEOUT_SECONDS

    def _execute_in_slot(self, request: StepRequest) -> ToolResult:
        """Run the tool, holding one of its `max_parallel` slots (across workers and runs)."""
        adapter = resolve_adapter(self.tool, self.root)
        limit = self.settings().max_parallel
        if not limit:
            return adapter.execute(request)
        from uet_doit.run.slots import ToolSlots

        slots = ToolSlots(self.root / ".uet")
        wait_note = f"waiting for a free {self.tool} slot (max_parallel {limit})"
        with slots.acquire(self.tool, limit, on_wait=lambda: self._status("waiting", wait_note)):
            self._status("running")
            return adapter.execute(request)

    def _check_result(
        self, result: ToolResult, env: dict[str, str], out: Path, err: Path, result_file: Path
    ) -> ToolResult:
        """What every attempt must pass after the tool: its outputs exist, validation passes."""
        _merge_result_file(result, result_file)
        if not result.success:
            return result
        missing = [p for p in self.spec.create_files if not (self.root / p).exists()]
        if missing:
            result.success = False
            result.failure_class = FailureClass.MISSING_OUTPUT
            result.message = "the tool finished but did not create: " + ", ".join(missing)
            return result
        if self.spec.validation is not None:
            return self._validate(result, env, out, err)
        return result

    def _validate(
        self, result: ToolResult, env: dict[str, str], out: Path, err: Path
    ) -> ToolResult:
        from uet_doit.tools.adapters.shell import command_argv

        val = self.spec.validation
        assert val is not None
        command = val.command if isinstance(val.command, str) else list(val.command)
        proc = run_process(
            command_argv(command),
            cwd=self.root,
            env=env,
            timeout=val.timeout,
            stdout_path=out.with_suffix(".validation.stdout"),
            stderr_path=err.with_suffix(".validation.stderr"),
        )
        if proc.exit_code == val.expected_exit_code and not proc.timed_out:
            return result
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
        result.message = (
            f"validation `{shown}` gave {got}, expected {val.expected_exit_code}:\n{tail}"
        )
        result.output_tail = proc.output[-4000:]
        return result


def _merge_result_file(result: ToolResult, path: Path) -> None:
    """Shell and python tools report cost through $UET_RESULT_FILE."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, OSError):
        return
    if not isinstance(data, dict):
        return
    if result.cost_usd is None and isinstance(data.get("cost_usd"), int | float):
        result.cost_usd = float(data["cost_usd"])
        result.cost_source = "result_file"
    for key in ("tokens_in", "tokens_out"):
        if getattr(result, key) is None and isinstance(data.get(key), int):
            setattr(result, key, data[key])
    if result.model is None and isinstance(data.get("model"), str):
        result.model = data["model"]


_ADAPTERS: dict[tuple[str, str], ToolAdapter] = {}
_ROUTERS: dict[str, RouterConfig] = {}


def router_config(root: Path) -> RouterConfig:
    """router_config.json of a project, read once per process."""
    key = str(root)
    if key not in _ROUTERS:
        _ROUTERS[key] = load_router_config(root)
    return _ROUTERS[key]


def resolve_adapter(tool: str, root: Path) -> ToolAdapter:
    """The adapter for a tool name: built-ins, then router_config.json and entry points."""
    key = (tool, str(root))
    adapter = _ADAPTERS.get(key)
    if adapter is None:
        adapter = _ADAPTERS[key] = get_adapter(tool, router_config(root), root)
    return adapter
