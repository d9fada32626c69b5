"""Deciding what a step does, and the one routine every attempt of it goes through.

`StepPolicy.run()` returns a typed `StepOutcome`: it checks the step can start, asks the
extensions (a cache hit ends it), then hands over to best-of or to the chain of tools with
their retries and fix rounds (run/attempt_loop.py). `StepPolicy.attempt` is the one
sequence of an attempt: prepared, recorded, run by an Executor, concluded, recorded.
Its collaborators (store, adapters, clock, executor, slots) are parameters, so a test
drives it with an in-memory store and a fake executor, without a process or a real sleep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from uet_doit.errors import UetError
from uet_doit.run.attempt_loop import run_chain, run_with_tool, tool_chain
from uet_doit.run.best_of import run_best_of
from uet_doit.run.breakers import BreakerBook
from uet_doit.run.budget import CostLedger
from uet_doit.run.budget_gate import charge_unknown
from uet_doit.run.context import RunContext
from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec
from uet_doit.run.executors.base import AttemptHandle, Declined, Executor, OnStart, starts_tools
from uet_doit.run.executors.recovery import left_behind
from uet_doit.run.extensions import AttemptNotRun, ConcludeTurn, StepExtension, StepOutcome
from uet_doit.run.providers import ProviderGate, provider_of
from uet_doit.run.resilience import Clock
from uet_doit.run.step_spec import StepSpec, fingerprint
from uet_doit.run.tool_setup import ToolSetup, tool_setup
from uet_doit.state.records import AttemptOutcome, AttemptRecord, EventKind, StepState
from uet_doit.state.store import RunStore
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.routing import AdapterRegistry

_log = logging.getLogger(__name__)

SlotProvider = Callable[[str, int, Callable[[], None]], AbstractContextManager[None]]


class StepPolicy:
    #: whether this policy's step is a step of the plan, with a state row (a review is not)
    records_step = True

    def __init__(
        self,
        spec: StepSpec,
        ctx: RunContext,
        store: RunStore,
        tools: AdapterRegistry,
        clock: Clock,
        executor: Executor,
        slots: SlotProvider | None = None,
        extensions: Sequence[StepExtension] = (),
        providers: ProviderGate | None = None,
    ) -> None:
        self.spec = spec
        self.ctx = ctx
        self.store = store
        self.tools = tools
        self.clock = clock
        self.executor = executor
        self.slots = slots
        self.extensions = tuple(extensions)
        self.providers = providers
        self._latest: AttemptRecord | None = None
        self._latest_read = False
        self.last_attempt: int | None = None
        self.root = Path(spec.project_root)
        self.ledger = CostLedger(store, ctx.session)
        self.breakers = BreakerBook(store)
        self._setups: dict[str, ToolSetup] = {}
        self._pids: dict[int, int] = {}  # attempt id -> a local tool's pid, kept with its end

    # -- recording ---------------------------------------------------------------------------
    def state(self, state: StepState, message: str | None = None, tool: str | None = None) -> None:
        if not self.records_step:
            return
        self.store.set_step_state(
            self.ctx.run_id, self.spec.step_id, state, message, self.spec.ws_id, tool
        )

    def fail(self, cls: FailureClass, message: str, tool: str | None = None) -> StepOutcome:
        self.state(StepState.FAILED, f"{cls}: {message}", tool)
        return StepOutcome(StepState.FAILED, f"{self.spec.step_id} failed ({cls}): {message}", tool)

    # -- the whole step ----------------------------------------------------------------------
    def run(self) -> StepOutcome:
        from uet_doit.run.workspaces.paths import unsafe_paths  # lazy: start-up time

        spec = self.spec
        done = left_behind(self)
        if done is not None:
            return done
        stopped = self._stopped_by_failure()
        if stopped is not None:
            self.state(StepState.NOT_STARTED, stopped)
            return StepOutcome(StepState.NOT_STARTED, f"not started: {stopped}")
        unsafe = unsafe_paths(self.root, spec.paths)
        if unsafe:
            return self.fail(FailureClass.PERMANENT, unsafe)
        absent = [f for f in spec.files if not (self.root / f).exists()]
        if absent:
            return self.fail(
                FailureClass.BUNDLE,
                f"input file(s) {', '.join(absent)} do not exist and no earlier step created "
                "them; the tool was not started",
            )
        for extension in self.extensions:
            early = extension.before_step(self)
            if early is not None:
                return early
        try:
            chain, why = tool_chain(self)
        except UetError as exc:
            return self.fail(FailureClass.PERMANENT, exc.render())
        if not chain:
            return self.fail(FailureClass.PERMANENT, f"no tool for this step: {why}")
        best = run_best_of(self, chain[0])
        if best is not None:
            return best
        return run_chain(self, chain)

    def run_tool(self, tool: str) -> StepOutcome:
        """The step's attempts with this one tool (breaker, budget, retries, the fix loop),
        no route and no fallback: a pseudo-step's run (a `uet convert --with` draft)."""
        return run_with_tool(self, tool, None)[0]

    def _stopped_by_failure(self) -> str | None:
        """`uet run` without -c stops launching steps after the first failure (doit runs in
        --continue mode so that steps outside an exhausted budget can go on)."""
        if not self.ctx.stop_on_failure:
            return None
        failed = self.store.first_step_in(self.ctx.run_id, StepState.FAILED)
        if failed is None:
            return None
        return f"step {failed} failed (uet run -c keeps going after failures)"

    # -- tools -----------------------------------------------------------------------------------
    def setup(self, tool: str) -> ToolSetup:
        """The step run with `tool`: model, options, timeout, fix rounds (one resolution,
        made once per step and tool: an attempt asks several times)."""
        found = self._setups.get(tool)
        if found is None:
            found = self._setups[tool] = tool_setup(self.spec, tool, self.tools)
        return found

    def timeout(self, tool: str) -> float:
        return self.setup(tool).timeout

    # -- one attempt ---------------------------------------------------------------------------
    def attempt_spec(
        self, tool: str, attempt_no: int, instruction: str, resume: str | None = None
    ) -> AttemptSpec:
        spec, ctx = self.spec, self.ctx
        logs = self.root / ".uet" / "runs" / ctx.run_id / "steps"
        stem = f"{spec.step_id}.{attempt_no}"
        # the attempt's own folder: the one place under .uet/ its sandbox lets it write
        scratch = self.root / ".uet" / "runs" / ctx.run_id / "scratch" / stem
        result_file = scratch / "result.json"
        setup = self.setup(tool)
        env = {**setup.tool_env, **spec.env}
        env.update(ctx.tool_env(spec.step_id, spec.ws_id, attempt_no, str(result_file)))
        return AttemptSpec(
            run_id=ctx.run_id,
            bundle_id=spec.bundle_id,
            ws_id=spec.ws_id,
            step_id=spec.step_id,
            attempt=attempt_no,
            tool=tool,
            instruction=instruction,
            files=spec.files,
            create_files=spec.create_files,
            project_root=self.root,
            config_root=self.root,
            timeout=setup.timeout,
            stdout_path=logs / f"{stem}.stdout",
            stderr_path=logs / f"{stem}.stderr",
            result_file=result_file,
            exit_file=logs / f"{stem}.exit",
            env=env,
            model=setup.model,
            options=setup.options,
            context=dict(spec.context),
            validation=spec.validation,
            max_log_bytes=spec.max_log_bytes,
            scratch_dir=scratch,
            stall_timeout=setup.stall_timeout,
            resume_session=resume,
        )

    def attempts_so_far(self) -> int:
        """The number of the step's last attempt in this run (one query per step)."""
        if self.last_attempt is None:
            latest = self.latest_attempt()
            same_run = latest is not None and latest.run_id == self.ctx.run_id
            self.last_attempt = latest.attempt if latest is not None and same_run else 0
        return self.last_attempt

    def latest_attempt(self) -> AttemptRecord | None:
        """The step's newest attempt in this project, read once per step."""
        if not self._latest_read:
            self._latest = self.store.latest_attempt(self.spec.bundle_id, self.spec.step_id)
            self._latest_read = True
        return self._latest

    def attempt(
        self,
        aspec: AttemptSpec,
        executor: Executor | None = None,
        *,
        attempt_id: int | None = None,
        fallback_from: str | None = None,
        success_note: str | None = None,
        turn: ConcludeTurn | None = None,
    ) -> AttemptResult:
        """The one sequence of every attempt: the extensions prepare it, it is recorded, an
        executor runs or answers it, the extensions conclude it, its end is recorded.
        With a `turn`, it concludes when the turn says so, or not at all (best-of).

        `attempt_id` names an attempt a killed runner began and prepared (adopted): it is
        finished, not begun again. An executor that starts no tool (the cache) answers at
        once, so its attempt is recorded only when the answer stands; one that does not is
        cancelled (what it put in place comes back) and `Declined` raised, as when an
        executor cannot answer: the step then goes on as if it had not been tried.
        """
        executor = executor or self.executor
        tools = starts_tools(executor)
        kept = attempt_id is not None
        unrun: AttemptResult | None = None  # an extension could not prepare the attempt
        if not kept:
            try:
                for extension in self.extensions:
                    aspec = extension.prepare_attempt(self, aspec)
            except AttemptNotRun as exc:
                if not tools:
                    raise Declined(exc.result.message) from exc
                unrun = exc.result
        if aspec.resume_session:
            _log.debug("resume %s: %s session %s", aspec.step_id, aspec.tool, aspec.resume_session)
        if attempt_id is None and tools:
            attempt_id = self.begin(aspec, fallback_from=fallback_from)
        handle: AttemptHandle | None = None
        try:
            if unrun is not None:
                result = unrun
            else:
                handle, result = self._run(aspec, executor, attempt_id, tools)
                result = self._conclude(aspec, result, turn)
        except BaseException as exc:
            declined = exc.message if isinstance(exc, Declined) else None  # the step goes on
            if handle is not None and not tools:
                handle.cancel()
            self._abandon(aspec)
            if attempt_id is not None:
                pid = self._pids.pop(attempt_id, None)
                self.store.finish_attempt(
                    attempt_id,
                    AttemptOutcome.INTERRUPTED,
                    pid=pid,
                    failure_class=str(FailureClass.INTERRUPTED),
                    message=declined or f"interrupted ({type(exc).__name__})",
                )
            if declined is None:
                self.state(StepState.INTERRUPTED, None, aspec.tool)
            raise
        if attempt_id is None:  # an answer: recorded only now that it stands
            if not result.success:
                if handle is not None:
                    handle.cancel()
                raise Declined(result.message, result)
            attempt_id = self.begin(aspec, result.outcome, fallback_from)
        if not kept:
            self.last_attempt = aspec.attempt
        self.finish(attempt_id, result, success_note, aspec)
        if result.success:
            if kept or not tools:  # no attempt of it ran in this run: its step row is made here
                self.state(StepState.SUCCEEDED, success_note, aspec.tool)
            for extension in self.extensions:
                extension.after_success(self, aspec, result)
        return result

    def _run(
        self, aspec: AttemptSpec, executor: Executor, attempt_id: int | None, tools: bool
    ) -> tuple[AttemptHandle, AttemptResult]:
        """The executor's part; a tool runs in one of its slots and its provider's places."""
        store = self.store
        on_start: OnStart | None = None
        if attempt_id is not None:
            recorded, pids = attempt_id, self._pids
            if self.tools.traits(aspec.tool).local:
                # one commit less a step: a killed runner's local tool is found by the pid
                # note its reaper writes beside the exit file (noted_pid), so its pid is
                # recorded with the attempt's end
                on_start = lambda pid: pids.__setitem__(recorded, pid)  # noqa: E731
            else:
                on_start = lambda pid: store.set_attempt_process(recorded, pid)  # noqa: E731
        if not tools:
            handle = executor.submit(aspec, on_start)
            return handle, handle.result()
        with self.slot(aspec.tool), self.provider_place(aspec) as provider:
            handle = executor.submit(aspec, on_start)
            result = handle.result()
            if provider is not None and self.providers is not None:
                limited = result.failure_class == FailureClass.RATE_LIMIT
                if result.success or limited:
                    self.providers.report(provider, limited)
        return handle, result

    def _conclude(
        self, aspec: AttemptSpec, result: AttemptResult, turn: ConcludeTurn | None
    ) -> AttemptResult:
        """The extensions judge and apply what the attempt did, when its turn comes."""
        unconcluded = None if turn is None else turn.wait(aspec, result)
        if unconcluded is not None:
            self._abandon(aspec)
            return unconcluded
        for extension in self.extensions:
            result = extension.conclude_attempt(self, aspec, result)
        return result if turn is None else turn.concluded(aspec, result)

    def _abandon(self, aspec: AttemptSpec) -> None:
        for extension in self.extensions:
            extension.abandon_attempt(self, aspec)

    def begin(
        self,
        aspec: AttemptSpec,
        outcome: AttemptOutcome = AttemptOutcome.RUNNING,
        fallback_from: str | None = None,
    ) -> int:
        """Record an attempt before anything of it happens (its spec kept for recovery)."""
        return self.store.begin_attempt(
            self.ctx.run_id,
            self.spec.bundle_id,
            self.spec.ws_id,
            self.spec.step_id,
            aspec.tool,
            aspec.attempt,
            session=self.ctx.session,
            stdout_path=str(aspec.stdout_path),
            stderr_path=str(aspec.stderr_path),
            exit_file=str(aspec.exit_file)
            if aspec.exit_file and outcome == AttemptOutcome.RUNNING
            else None,
            fallback_from=fallback_from,
            spec=aspec.to_record(),
            outcome=outcome,
            step_row=self.records_step,
        )

    def slot(self, tool: str) -> AbstractContextManager[None]:
        """One of the tool's `max_parallel` slots, across workers and runs."""
        limit = self.setup(tool).max_parallel
        if not limit or self.slots is None:
            return nullcontext()
        note = f"waiting for a free {tool} slot (max_parallel {limit})"
        return self.slots(tool, limit, lambda: self.state(StepState.WAITING, note, tool))

    @contextmanager
    def provider_place(self, aspec: AttemptSpec) -> Iterator[str | None]:
        """A place under the provider's adaptive limit (AI tools only); yields its name."""
        if self.providers is None or self.tools.traits(aspec.tool).local:
            yield None
            return
        import os

        provider = provider_of(aspec.tool, aspec.model, {**os.environ, **aspec.env})
        cap = min(self.ctx.jobs, self.setup(aspec.tool).max_parallel or self.ctx.jobs)
        note = f"waiting for {provider} (concurrency lowered after rate limits)"
        waiting = lambda: self.state(StepState.WAITING, note, aspec.tool)  # noqa: E731
        with self.providers.hold(provider, cap, waiting):
            yield provider

    def finish(
        self,
        attempt_id: int,
        result: AttemptResult,
        success_note: str | None = None,
        aspec: AttemptSpec | None = None,
        tool: str | None = None,
    ) -> None:
        """Record an attempt's result (and its notes, e.g. a rejected cost) in the store;
        a success records the step as succeeded in the same transaction. A cost that is
        unknown is charged to budgets at what the attempt reserved, never at $0."""
        for note in result.notes:
            self.store.event(
                self.ctx.run_id, EventKind.COST_REJECTED, self.spec.step_id, message=note
            )
        tool = tool or (aspec.tool if aspec is not None else self.spec.tool)
        charged = charge_unknown(self, result, tool)
        pid = self._pids.pop(attempt_id, None)
        self.store.finish_attempt(
            attempt_id,
            result.outcome,
            pid=pid,
            exit_code=result.exit_code,
            failure_class=str(result.failure_class) if result.failure_class else None,
            message=result.message[:2000],
            cost_usd=result.cost_usd,
            tokens_in=result.tokens_in,
            tokens_out=result.tokens_out,
            model=result.model,
            cost_source=result.cost_source,
            charged_usd=charged,
            signature=self.spec.signature,
            fingerprint=fingerprint(self.root, self.spec.paths) if result.success else None,
            worker=result.worker or None,
            tool_session=result.tool_session,
            resumed_session=None if aspec is None else aspec.resume_session,
            saved_usd=result.saved_usd,
            cache_key=result.cache_key,
            step_state=StepState.SUCCEEDED if result.success else None,
            step_message=success_note,
        )


def local_slots(state_dir: Path) -> SlotProvider:
    """Per-tool slots as lock files under .uet/slots (hold across processes and runs)."""
    from uet_doit.run.slots import ToolSlots  # lazy: start-up time

    slots = ToolSlots(state_dir)

    def acquire(tool: str, limit: int, on_wait: Callable[[], None]) -> Iterator[None]:
        return slots.acquire(tool, limit, on_wait=on_wait)  # type: ignore[return-value]

    return acquire  # type: ignore[return-value]
