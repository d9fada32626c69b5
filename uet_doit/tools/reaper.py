"""The reaper: one small process per run that starts the run's tools and records how
each one ended, even after the runner itself was killed.

Why: a tool must finish, and its exit code be known, when its runner dies (kill -9), so a
resumed run adopts the result instead of paying again. A wrapper shell per tool did that
at the price of one more exec per step; this process is started once. It reads spawn
requests (JSON lines) on stdin, answers with the child's pid and, later, its exit code on
stdout, and writes each exit code to the attempt's exit file (and `<stem>.pid` with the
child's pid and start time while it runs). When the runner goes away (stdin closes) it
keeps waiting for its children, writes their exit files, then exits.

Run as `python -S -I reaper.py` (tools/spawner.py, the runner's side, starts it); it imports
only the standard library.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import os
import select
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class _Child:
    request_id: int
    proc: subprocess.Popen[bytes]
    exit_file: Path
    pidfd: int


def start_time(pid: int) -> str:
    """The kernel's start time of `pid` (tells a live child from a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_note(path: Path, text: str) -> None:
    """A note readers see whole or not at all, as a symbolic link holding `text` (one
    directory entry: a temporary file and its rename cost one more and a rename, a step);
    read back with read_note."""
    try:
        os.symlink(text, path)
    except OSError:  # there already (the same attempt started again), or no symlinks here
        _write_atomic(path, text)


def read_note(path: Path) -> str:
    """A note of write_note: a link's text, or a file's (a fallback, an older reaper's)."""
    try:
        return os.readlink(path)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: a regular file
            raise
    return path.read_text()


class ExitCodes:
    """Exit files as hard links to one file per exit code and folder: a link is made
    whole in one directory operation, where writing a temporary file and renaming it
    takes three (what a step of a `touch` spends most of the reaper's time on)."""

    def __init__(self) -> None:
        self.made: dict[tuple[Path, int], Path] = {}

    def write(self, exit_file: Path, code: int) -> None:
        key = (exit_file.parent, code)
        source = self.made.get(key)
        try:
            if source is None:
                source = self.made[key] = exit_file.parent / f".exit-code.{code}"
                _write_atomic(source, f"{code}\n")
            os.link(source, exit_file)
        except FileExistsError:
            _write_atomic(exit_file, f"{code}\n")
        except OSError:  # too many links to one file (65000 on ext4), or none allowed here
            self.made.pop(key, None)
            _write_atomic(exit_file, f"{code}\n")


class Reaper:
    def __init__(self) -> None:
        self.children: dict[int, _Child] = {}  # pidfd -> child
        self.out = sys.stdout.buffer
        self.runner_gone = False
        self.stopped = False  # the runner is stopping: kill everything, start nothing
        self.exit_codes = ExitCodes()

    def answer(self, data: dict[str, Any]) -> None:
        if self.runner_gone:
            return
        try:
            self.out.write(json.dumps(data).encode() + b"\n")
            self.out.flush()
        except (BrokenPipeError, OSError):
            self.runner_gone = True  # nobody listens: keep recording exit files

    def stop(self) -> None:
        """Kill every tool (and its group) now; refuse to start any more."""
        self.stopped = True
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.proc.pid, signal.SIGKILL)

    def spawn(self, req: dict[str, Any]) -> None:
        if self.stopped:
            self.answer({"id": req["id"], "error": "the runner is stopping", "errno": 0})
            return
        exit_file = Path(req["exit_file"])
        stdin_data = base64.b64decode(req["stdin"]) if req.get("stdin") is not None else None
        try:
            with open(req["stdout"], "wb") as out, open(req["stderr"], "wb") as err:
                proc = subprocess.Popen(
                    req["argv"],
                    cwd=req["cwd"],
                    env=req["env"],
                    stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
        except OSError as exc:
            self.answer({"id": req["id"], "error": exc.strerror or str(exc), "errno": exc.errno})
            return
        pidfd = os.pidfd_open(proc.pid)
        self.children[pidfd] = _Child(req["id"], proc, exit_file, pidfd)
        # the runner waits for the pid alone; the note for a resumed run is written after it
        self.answer({"id": req["id"], "pid": proc.pid})
        write_note(exit_file.with_suffix(".pid"), f"{proc.pid} {start_time(proc.pid)}")
        if stdin_data is not None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                proc.stdin.write(stdin_data)
            with contextlib.suppress(BrokenPipeError, OSError):
                proc.stdin.close()

    def reap(self, pidfd: int) -> None:
        child = self.children.pop(pidfd)
        os.close(pidfd)
        code = child.proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, signal.SIGKILL)  # no member of its group outlives it
        with contextlib.suppress(OSError):
            self.exit_codes.write(child.exit_file, code)
        self.answer({"id": child.request_id, "exit": code})

    def run(self) -> None:
        stdin = sys.stdin.buffer.fileno()
        pending = b""
        reading = True
        while reading or self.children:
            watch = [*self.children, *([stdin] if reading else [])]
            poller = select.poll()  # not select: it fails on descriptors numbered 1024 or more
            for fd in watch:
                poller.register(fd, select.POLLIN)
            ready = [fd for fd, _ in poller.poll()]
            for fd in ready:
                if fd == stdin:
                    chunk = os.read(stdin, 1 << 16)
                    if not chunk:
                        reading = False
                        continue
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if not line.strip():
                            continue
                        request = json.loads(line)
                        if request.get("stop"):
                            self.stop()
                        else:
                            self.spawn(request)
                else:
                    self.reap(fd)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner decides what to stop
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    Reaper().run()
    return 0


if __name__ == "__main__":
    code = main()
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    os._exit(code)  # nothing is left to clean up: a run's end need not wait for a teardown
