"""Test helpers: a project in tmp_path, bundles written there, `uet` called in-process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import redirect_stderr, redirect_stdout, suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest
import yaml

from uet_doit import testing

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
FAKE_TOOLS = testing.FAKE_TOOLS  # the fake AI CLIs ship in the package (uet_doit.testing)
T = TypeVar("T")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """stdout then stderr, as a terminal shows them."""
        return self.out + self.err


class Project:
    """A throwaway project root (the cwd while a test runs)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def bundle(self, data: dict[str, Any], name: str = "bundle.yaml") -> Path:
        if name.endswith(".json"):
            return self.write(name, json.dumps(data, indent=2))
        return self.write(name, yaml.safe_dump(data, sort_keys=False))

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def uet(self, *args: str) -> Result:
        from uet_doit.cli.main import main

        out, err = io.StringIO(), io.StringIO()
        os.environ.pop("UET_RUN_ID", None)
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
        os.environ.pop("UET_RUN_ID", None)
        return Result(code, out.getvalue(), err.getvalue())

    def run(self, *args: str, bundle: str = "bundle.yaml") -> Result:
        """`uet run BUNDLE --reporter plain ARGS`."""
        return self.uet("run", bundle, "--reporter", "plain", *args)

    def run_ok(self, *args: str, bundle: str = "bundle.yaml") -> Result:
        """`run`, which must succeed (its output is the assertion's message otherwise)."""
        result = self.run(*args, bundle=bundle)
        assert result.code == 0, result.out + result.err
        return result

    def status(self, run_id: str | None = None) -> dict[str, Any]:
        res = self.uet("status", "--json", *([run_id] if run_id else []))
        assert res.code == 0, res.err
        data: dict[str, Any] = json.loads(res.out)
        return data

    def lines(self, rel: str) -> list[str]:
        path = self.root / rel
        return path.read_text().splitlines() if path.exists() else []


def quick_first(cases: Iterable[Any], unpack: bool = False) -> list[Any]:
    """Parametrize cases of which only the first runs in the quick loop (`-m "not slow"`):
    each case is a whole run, one shows the path works, the full suite runs every case.
    `unpack`: each case is a tuple of several arguments."""
    first, *rest = cases
    slow = [pytest.param(*(c if unpack else (c,)), marks=pytest.mark.slow) for c in rest]
    return [first, *slow]


def load_benchmark(name: str) -> ModuleType:
    """benchmarks/NAME.py as a module (benchmarks/ is no package), registered in sys.modules
    so its dataclasses resolve their annotations."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        f"uet_bench_{name}", REPO / "benchmarks" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_plugin(module: Any, *argv: str) -> int:
    """One command module's CLI (register + handler) as `uet` would run it."""
    from uet_doit.cli.parsing import UetParser
    from uet_doit.errors import UetError

    parser = UetParser(prog="uet")
    module.register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    try:
        code: int = args.handler(args)
    except UetError as exc:
        print(exc.render())
        return exc.exit_code
    return code


def start_run(root: Path, until: str | None = None) -> subprocess.Popen[str]:
    """`uet run bundle.yaml` in a child process, read up to the first line containing
    `until` (so a test can act while a given step runs)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "uet_doit", "run", "bundle.yaml"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if until is not None:
        for line in proc.stdout:
            if until in line:
                break
    return proc


def shell_step(step_id: str, command: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"step_id": step_id, "tool_profile_id": "shell", "command": command, **extra}


def one_ws(*steps: dict[str, Any], bundle_id: str = "b", **ws: Any) -> dict[str, Any]:
    """A bundle of one workstream `W` holding `steps` (and `ws` as its other fields)."""
    return {"bundle_id": bundle_id, "workstreams": [{"ws_id": "W", "steps": list(steps), **ws}]}


#: a shell step that fails `fails` times with `message` on stderr, then succeeds; it counts
#: its runs in NAME.count and logs each in NAME.calls
FLAKY = (
    "n=$(cat {name}.count 2>/dev/null || echo 0); n=$((n+1)); echo $n > {name}.count; "
    'echo $n >> {name}.calls; if [ $n -le {fails} ]; then echo "{message}" >&2; exit 1; fi'
)


def flaky(name: str, fails: int, message: str, retries: int = 3, **extra: Any) -> dict[str, Any]:
    """A FLAKY step retried up to `retries` times at once (no backoff, no jitter)."""
    fast = {"max_retries": retries, "initial_delay": 0, "max_delay": 0, "jitter": 0}
    extra.setdefault("resilience", fast)
    return shell_step(name, FLAKY.format(name=name, fails=fails, message=message), **extra)


PY = sys.executable


def wait_until(pred: Callable[[], object], timeout: float = 60.0, every: float = 0.05) -> bool:
    """Whether `pred()` came true within `timeout` seconds (asked every `every` seconds):
    tests wait on a condition with a deadline, never for a fixed time. The deadline is
    generous, as the machine may be loaded: it only bounds a test that would hang."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 120.0) -> T:
    """The first value `read` returns that is `done`, or the last one once `timeout` has
    passed."""
    seen: list[T] = []

    def check() -> bool:
        seen[:] = [read()]
        return done(seen[0])

    wait_until(check, timeout)
    return seen[0]


def wait_file(
    path: Path, whole: Callable[[str], bool] = lambda _text: True, timeout: float = 60.0
) -> None:
    """Until `path` exists and its text is `whole` (a file is created before it is written:
    a pid file holds a whole line, a JSON file parses); fails the test after `timeout`."""
    assert wait_until(lambda: path.exists() and whole(path.read_text()), timeout), (
        f"{path.name} never appeared"
    )


def wait_gone(pid: int, timeout: float = 30.0) -> bool:
    """Whether `pid` has ended (or is a zombie) within `timeout` seconds."""
    from uet_doit.state.rows import pid_alive

    return wait_until(lambda: not pid_alive(pid), timeout)


def kill_left_tools(root: Path, timeout: float = 5.0) -> None:
    """Kill the tools a killed runner left running (they run in their own sessions), by the
    process groups the run store (or their reapers' pid notes) recorded for them (within
    `timeout`: a run may have none left), and wait until they are gone."""
    import signal

    from uet_doit.run.executors.adopted import attempt_pid
    from uet_doit.state.store import RunStore

    store = RunStore(root)

    def running() -> list[int]:
        run_id = store.latest_run_id()
        attempts = store.attempts(run_id) if run_id else []
        pids = (attempt_pid(a) for a in attempts if a.ended is None)
        return [pid for pid in pids if pid]

    pids = wait_for(running, bool, timeout)
    for pid in pids:
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    for pid in pids:
        wait_gone(pid)


def attempt_rows(project: Project, step_id: str | None = None) -> list[dict[str, Any]]:
    """The project's attempts as the run store reports them (oldest first), as dicts."""
    from dataclasses import asdict

    from uet_doit.state.store import RunStore

    return [asdict(a) for a in RunStore(project.root).history(step_id)]


def event_rows(project: Project, kind: str) -> list[dict[str, Any]]:
    """The project's events of one kind: their step and data, oldest first."""
    from uet_doit.state.records import EventKind
    from uet_doit.state.store import RunStore

    events = RunStore(project.root).events_of(EventKind(kind))
    return [{"step_id": e.step_id, **e.data} for e in events]


#: one step and three completion criteria: a sentence, a met file check, an unmet command
CRITERIA_BUNDLE: dict[str, Any] = {
    "bundle_id": "c",
    "workstreams": [
        {
            "ws_id": "W",
            "steps": [shell_step("make", "echo x > made.txt", create_files=["made.txt"])],
            "completion_criteria": [
                "Reviewed by a person",
                {"description": "output exists", "files_exist": ["made.txt"]},
                {"description": "output mentions y", "command": "grep -q y made.txt"},
            ],
        }
    ],
}
