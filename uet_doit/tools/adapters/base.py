"""The adapter protocol: an attempt's spec in, its result filled, via the one process module."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from uet_doit.tools.attempt import AttemptResult, AttemptSpec
from uet_doit.tools.failures import FailureClass, classify, retry_after_seconds
from uet_doit.tools.process import ProcessResult, run_process
from uet_doit.tools.sandbox import DENIED_MARKERS

#: what an adapter reads and what it fills: the attempt's own spec and result, by the names
#: custom adapters know (README: custom adapters)
StepRequest = AttemptSpec
ToolResult = AttemptResult


@dataclass(frozen=True)
class Invocation:
    argv: list[str]
    env: Mapping[str, str]
    cwd: Path
    stdin_data: bytes | None = None


def failed_process(proc: ProcessResult, message: str | None = None) -> ToolResult:
    """A generic failure built from a finished process: classified from its output."""
    text = proc.output
    cls = classify(proc.exit_code, text, timed_out=proc.timed_out)
    if proc.stalled:
        cls = FailureClass.STALLED
        message = message or (
            f"stalled: no output and no file change for {proc.stall_timeout:.0f}s; stopped"
        )
    if message is None:
        if proc.timed_out:
            message = f"timed out after {proc.duration_s:.0f}s"
        else:
            last = [ln for ln in text.strip().splitlines() if ln.strip()]
            message = f"exit code {proc.exit_code}" + (f": {last[-1].strip()}" if last else "")
    return ToolResult(
        success=False,
        exit_code=proc.exit_code,
        message=message,
        failure_class=cls,
        retry_after_s=retry_after_seconds(text),
        output_tail=text[-4000:],
    )


def sandbox_denial(result: ToolResult, proc: ProcessResult) -> ToolResult | None:
    """A failed attempt whose output shows a write its sandbox refused: never retried (the
    same write would be refused again), with the refused line."""
    for line in proc.output.splitlines():
        if any(marker in line for marker in DENIED_MARKERS):
            result.failure_class = FailureClass.SANDBOX_DENIED
            result.message = (
                f"the sandbox refused a write: {line.strip()[:300]}; the tool may write only "
                "its worktree, its scratch folder and the temp dir (see docs/isolation.md)"
            )
            return result
    return None


class ToolTraits:
    """What uet assumes about a tool before it runs, declared by its adapter class (the one
    place these answers live: `tool_traits(name)`). The defaults are a custom adapter's: it
    edits files in a worktree, is cached, may review, and is neither an AI CLI uet prices
    nor a command of the step's own."""

    #: an AI coding tool: edits files from an instruction, spends tokens it should report
    ai: ClassVar[bool] = False
    #: runs the step's own command: its failures are the step's (no breaker unless the bundle
    #: asks, no fix round), router_config.json has no settings for it, it runs on any worker
    local: ClassVar[bool] = False
    #: runs in the project root unless the bundle says otherwise (commands, not edits)
    in_place: ClassVar[bool] = False
    #: its step is cached unless the bundle or the run says otherwise
    cached_by_default: ClassVar[bool] = True
    #: can judge another step's change (`review: {tool: ...}`)
    reviewer: ClassVar[bool] = True
    #: globs of files the tool leaves in its working directory for itself (aider's chat
    #: history, its tags cache): never the step's change, never landed
    own_files: ClassVar[tuple[str, ...]] = ()


class ToolAdapter(ToolTraits, ABC):
    """One tool. Subclasses say how to call it (`build`) and how to read it (`parse`), and
    declare their traits (ToolTraits) as class attributes."""

    name: ClassVar[str] = ""
    executable: ClassVar[str | None] = None
    install_hint: ClassVar[str] = ""
    version_args: ClassVar[tuple[str, ...]] = ("--version",)

    def home_state(self, env: Mapping[str, str]) -> list[Path]:
        """Folders outside the project the tool must write to work (its config and session
        state under $HOME): writable in its sandbox."""
        return []

    def home_files(self, env: Mapping[str, str]) -> dict[Path, str]:
        """Single files outside the project the tool must write (Claude's `~/.claude.json`),
        each with the text it starts with when missing; writable in its sandbox, while the
        folder they are in is not."""
        return {}

    def available(self) -> bool:
        return self.executable is None or shutil.which(self.executable) is not None

    def missing_result(self) -> ToolResult:
        hint = f"; install with: {self.install_hint}" if self.install_hint else ""
        return ToolResult(
            success=False,
            message=f"{self.executable} not found on PATH{hint}",
            failure_class=FailureClass.NOT_INSTALLED,
        )

    def version(self, env: Mapping[str, str], cwd: Path) -> str | None:
        """The tool's version line (`aider --version`), a part of step cache keys; None for
        tools without an executable, or one that is missing or does not answer."""
        if self.executable is None:
            return None
        found = shutil.which(self.executable, path=env.get("PATH"))
        if found is None:
            return None
        try:
            proc = run_process([found, *self.version_args], cwd=cwd, env=env, timeout=30)
        except OSError:
            return None
        lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
        if proc.exit_code != 0 or proc.timed_out or not lines:
            return None
        return lines[0][:200]

    def execute(self, request: StepRequest) -> ToolResult:
        if (
            self.executable is not None
            and shutil.which(self.executable, path=request.env.get("PATH")) is None
        ):
            return self.missing_result()
        invocation = self.build(request)
        argv = invocation.argv
        sandbox = request.sandbox
        if sandbox is not None:
            argv = sandbox.with_own(
                self.home_state(invocation.env), self.home_files(invocation.env)
            ).wrap(argv)
        try:
            proc = run_process(
                argv,
                cwd=invocation.cwd,
                env=invocation.env,
                timeout=request.timeout,
                stdout_path=request.stdout_path,
                stderr_path=request.stderr_path,
                stdin_data=invocation.stdin_data,
                exit_file=request.exit_file,
                on_start=request.on_start,
                stall_timeout=request.stall_timeout,
                processes=request.processes,
            )
        except FileNotFoundError:
            return self.missing_result()
        result = self.read_result(request, proc)
        if sandbox is not None and not result.success:
            return sandbox_denial(result, proc) or result
        return result

    def read_result(self, request: StepRequest, proc: ProcessResult) -> ToolResult:
        """`parse`, with output it did not foresee a failed attempt that says why, never an
        exception that would leave the attempt recorded as interrupted."""
        try:
            return self.parse(request, proc)
        except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
            result = failed_process(proc, f"{self.name}: its output could not be read ({exc})")
            result.message = result.message[:500]
            return result

    @abstractmethod
    def build(self, request: StepRequest) -> Invocation:
        """The argv, environment and working directory for this attempt."""

    @abstractmethod
    def parse(self, request: StepRequest, proc: ProcessResult) -> ToolResult:
        """Read the tool's exit code and output; never trust the exit code alone."""
