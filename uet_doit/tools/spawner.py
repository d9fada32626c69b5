"""The runner's side of the reaper (tools/reaper.py): start a tool, learn its pid, wait for
its exit code with a timeout. One reaper per run and process, started on first use."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: run by path, without site (-S -I): it needs only the standard library, and skipping site
#: (the editable-install finder included) halves the start every run pays for its reaper
_REAPER = Path(__file__).with_name("reaper.py")


class ReaperLost(RuntimeError):
    """The reaper process died: the attempt's outcome is unknown (retried as transient)."""


class Child:
    """A tool the reaper started."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.ended = threading.Event()
        self.pid = 0
        self.code: int | None = None
        self.error: tuple[int, str] | None = None
        self.lost = False

    def wait(self, timeout: float | None) -> bool:
        """True when the tool ended within `timeout`."""
        done = self.ended.wait(timeout)
        if done and self.lost:
            raise ReaperLost("the process that started this tool died")
        return done


class Spawner:
    """One reaper process and the thread that reads its answers; a run's ToolProcesses
    (tools/process.py) starts it on first use and closes it when the run ends."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-I", str(_REAPER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C of the terminal or a kill of our group spares it
        )
        self.children: dict[int, Child] = {}
        self._next = 0
        self._write = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="uet-reaper", daemon=True)
        self._reader.start()

    def alive(self) -> bool:
        return self.proc.poll() is None and self._reader.is_alive()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            data: dict[str, Any] = json.loads(line)
            child = self.children.get(int(data["id"]))
            if child is None:
                continue
            if "pid" in data:
                child.pid = int(data["pid"])
                child.started.set()
            elif "error" in data:
                child.error = (int(data.get("errno") or 0), str(data["error"]))
                child.started.set()
                child.ended.set()
            elif "exit" in data:
                child.code = int(data["exit"])
                self.children.pop(int(data["id"]), None)
                child.ended.set()
        for child in list(self.children.values()):  # the reaper died: nobody will answer
            child.lost = True
            child.started.set()
            child.ended.set()

    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        stdout_path: Path,
        stderr_path: Path,
        exit_file: Path,
        stdin_data: bytes | None = None,
    ) -> Child:
        """Start a tool through the reaper; FileNotFoundError when it does not exist."""
        child = Child()
        with self._write:
            self._next += 1
            request_id = self._next
            self.children[request_id] = child
            request = {
                "id": request_id,
                "argv": list(argv),
                "cwd": str(cwd),
                "env": dict(env),
                "stdout": str(stdout_path),
                "stderr": str(stderr_path),
                "exit_file": str(exit_file),
                "stdin": base64.b64encode(stdin_data).decode() if stdin_data is not None else None,
            }
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(json.dumps(request).encode() + b"\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self.children.pop(request_id, None)
                raise ReaperLost("the process that starts tools is gone") from None
        child.started.wait()
        if child.lost:
            raise ReaperLost("the process that starts tools died")
        if child.error is not None:
            errno, text = child.error
            raise FileNotFoundError(errno, text, str(argv[0]))
        return child

    def stop(self) -> None:
        with self._write, contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"stop": true}\n')
            self.proc.stdin.flush()

    def close(self, wait: float = 5.0) -> None:
        """No more tools: the reaper exits once those it runs have ended (when a run ends,
        none has), and the reading thread with it. A reaper still waiting on a tool after
        `wait` is left to record its exit code, as after a kill of the runner."""
        with self._write, contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            return
        self._reader.join(wait)
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()
