"""Fakes for testing code that plugs into uet, shipped as invoke ships `MockContext`: the
ones uet's own tests use, so a custom adapter is tested the way the built-in ones are.

- `fake_tools_on_path(folder)` (or `use_fake_tools(folder, monkeypatch)` in pytest) puts
  fake `aider`, `claude`, `codex` and `gemini` executables first on PATH. They take the real
  CLIs' arguments and print their output formats (`uet_doit/fake_tools/_fakelib.py` lists
  the `FAKE_*` switches: rate limits, crashes, hangs, costs, verdicts), write the files they
  are asked for and log every call, so nothing reaches a model or costs money.
- `ScriptedExecutor` answers each attempt with the next scripted `AttemptResult` of its
  tool, and `FakeClock` records sleeps instead of sleeping: the step policy's retries,
  breakers and fallbacks run in microseconds, starting no process.
  `StepPolicy(spec, ctx, RunStore.in_memory(root), tools, FakeClock(), executor)` is how
  tests/run/test_policy.py drives it.

A custom adapter that drives one of these CLIs (router_config.json `custom_adapters`, or
the `uet_doit.adapters` entry point), tested through `uet run` in pytest (uet's own
tests/test_testing.py runs this very case)::

    from uet_doit.cli.main import main
    from uet_doit.testing import use_fake_tools

    def test_my_adapter_writes_the_adr(tmp_path, monkeypatch):
        fakes = use_fake_tools(tmp_path / "fakes", monkeypatch, "claude")
        monkeypatch.setenv("FAKE_CLAUDE_MODE", "ok")  # or rate_limit, auth, hang, ...
        monkeypatch.chdir(tmp_path / "project")  # bundle.yaml: a step with tool_profile_id: adr
        assert main(["run", "bundle.yaml"]) == 0
        [call] = fakes.calls("claude")  # argv (without argv[0]), prompt, cwd, pid
        assert call["argv"][:2] == ["-p", "--output-format"]

The fakes behave as the real CLIs do, down to refusing what the real one would: the fake
claude edits nothing without `--permission-mode acceptEdits`, and writes only the files its
prompt lists under a "Files to create or update:" header (one "- path" a line).

Outside pytest, `with fake_tools_on_path(folder) as fakes:` sets the same variables in
`os.environ` and puts the old values back on leaving.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec
from uet_doit.run.executors.base import DoneHandle, OnStart

#: the fake AI CLIs (executable scripts, package data of uet_doit)
FAKE_TOOLS = Path(__file__).resolve().parent / "fake_tools"
FAKE_TOOL_NAMES = ("aider", "claude", "codex", "gemini")
#: the model the fake home's codex config names, so codex's tokens get a price
CODEX_MODEL = "gpt-5-codex"


class FakeClock:
    """A `Clock` whose `sleep` only moves its time on and remembers what it was asked."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class ScriptedExecutor:
    """An `Executor` that answers each submitted attempt with the next scripted result of
    its tool (`ScriptedExecutor(aider=[failed, ok], claude=[ok])`) and keeps what it got."""

    name = "scripted"

    def __init__(self, **script: list[AttemptResult]) -> None:
        self.script = {tool: list(results) for tool, results in script.items()}
        self.submitted: list[AttemptSpec] = []

    def submit(self, spec: AttemptSpec, on_start: OnStart | None = None) -> DoneHandle:
        self.submitted.append(spec)
        left = self.script.get(spec.tool)
        if not left:
            msg = (
                f"ScriptedExecutor: no result left for tool {spec.tool!r} (attempt "
                f"{spec.attempt} of step {spec.step_id!r}): script one more for it"
            )
            raise AssertionError(msg)
        return DoneHandle(spec, left.pop(0))

    def close(self) -> None:
        """Nothing held."""


class EnvPatcher(Protocol):
    """What sets and unsets environment variables: pytest's `monkeypatch`, or `_Environ`."""

    def setenv(self, name: str, value: str) -> None: ...

    def delenv(self, name: str, raising: bool = ...) -> None: ...


@dataclass(frozen=True)
class FakeTools:
    """The fake tools of one test: where they are linked from and where they log."""

    folder: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def bin_dir(self) -> Path:
        return self.folder / "bin"

    @property
    def log(self) -> Path:
        return self.folder / "calls.jsonl"

    def link(self, *tools: str) -> None:
        """Make exactly `tools` the fake tools installed: PATH names `bin_dir`, so the
        others are gone from it (a test of a missing tool, or of a fallback)."""
        unknown = sorted(set(tools) - set(FAKE_TOOL_NAMES))
        if unknown:
            msg = f"no fake tool {', '.join(unknown)}: there are {', '.join(FAKE_TOOL_NAMES)}"
            raise ValueError(msg)
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        for tool in FAKE_TOOL_NAMES:
            link = self.bin_dir / tool
            if tool not in tools:
                link.unlink(missing_ok=True)
            elif not link.is_symlink():
                link.symlink_to(FAKE_TOOLS / tool)  # the fakes find _fakelib.py by realpath

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        """Every logged invocation (argv, prompt, cwd, pid, times), oldest first; the
        `--version` questions (uet asks them for cache keys) are in `versions()`."""
        return [r for r in self._rows(tool) if not r.get("version")]

    def versions(self, tool: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self._rows(tool) if r.get("version")]

    def _rows(self, tool: str | None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines() if line]
        return [r for r in rows if tool is None or r["tool"] == tool]


def base_path() -> str:
    """This Python's folder (the fakes' `python3`) and the system basics: a PATH on which
    no real AI CLI is found."""
    return os.pathsep.join(dict.fromkeys([str(Path(sys.executable).parent), "/usr/bin", "/bin"]))


def prepare_fake_tools(
    folder: Path, tools: Iterable[str] = FAKE_TOOL_NAMES, *, home: bool = True
) -> FakeTools:
    """Link `tools` into `folder`/bin and say the environment that uses them: PATH (the
    links, then `base_path()`), the call log, state and temp folders, uet's sandbox allowed
    to write `folder`, and with `home` a HOME of its own whose codex config names a priced
    model."""
    fakes = FakeTools(folder.resolve())
    fakes.link(*tools)
    env = fakes.env
    env["PATH"] = f"{fakes.bin_dir}{os.pathsep}{base_path()}"
    env["FAKE_TOOL_LOG"] = str(fakes.log)
    env["FAKE_STATE_DIR"] = str(fakes.folder / "state")
    temp = fakes.folder / "tmp"  # the fakes leave a temp entry per call, as the real CLIs do
    temp.mkdir(parents=True, exist_ok=True)
    env["TMPDIR"] = str(temp)
    allowed = os.environ.get("UET_SANDBOX_ALLOW_WRITE")
    env["UET_SANDBOX_ALLOW_WRITE"] = os.pathsep.join(filter(None, [allowed, str(fakes.folder)]))
    if home:
        config = fakes.folder / "home" / ".codex" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f'model = "{CODEX_MODEL}"\n', encoding="utf-8")
        env["HOME"] = str(fakes.folder / "home")
    return fakes


def use_fake_tools(folder: Path, env: EnvPatcher, *tools: str, home: bool = True) -> FakeTools:
    """`prepare_fake_tools`, applied through `env` (pytest's `monkeypatch`, so it is undone
    after the test); `FAKE_*` switches and `CODEX_HOME` set outside the test are removed."""
    fakes = prepare_fake_tools(folder, tools or FAKE_TOOL_NAMES, home=home)
    for name in list(os.environ):
        if name.startswith("FAKE_") or name == "CODEX_HOME":
            env.delenv(name)
    for name, value in fakes.env.items():
        env.setenv(name, value)
    return fakes


class _Environ:
    """An EnvPatcher over os.environ that can put every value it changed back."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def setenv(self, name: str, value: str) -> None:
        self._saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def delenv(self, name: str, raising: bool = True) -> None:
        self._saved.setdefault(name, os.environ.get(name))
        if raising or name in os.environ:
            del os.environ[name]

    def restore(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def fake_tools_on_path(folder: Path, *tools: str, home: bool = True) -> Iterator[FakeTools]:
    """`use_fake_tools` for code without pytest: os.environ is put back on leaving."""
    environ = _Environ()
    try:
        yield use_fake_tools(folder, environ, *tools, home=home)
    finally:
        environ.restore()
