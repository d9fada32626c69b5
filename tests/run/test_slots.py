"""Per-tool slots: flock files shared by processes, threads and runs."""

from __future__ import annotations

import itertools
import json
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from uet_doit.run.slots import SlotWaitCancelled, ToolSlots

HOLDER = """
import json, sys, time
from pathlib import Path
from uet_doit.run.slots import ToolSlots
state, tool, limit, release, log = sys.argv[1:6]
waited = []
def on_wait():
    waited.append(1)
    print("waiting", flush=True)
slots = ToolSlots(Path(state), poll_seconds=0.01)
with slots.acquire(tool, int(limit), on_wait=on_wait):
    start = time.time()
    print("held", flush=True)
    deadline = time.monotonic() + 120
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    end = time.time()
with open(log, "a") as fh:
    fh.write(json.dumps({"start": start, "end": end, "waited": len(waited)}) + "\\n")
"""


def spawn(state: Path, limit: int, release: Path, log: Path) -> subprocess.Popen[str]:
    """A process that takes a slot, says `held`, and keeps it until `release` exists
    (it says `waiting` first if it had to wait): the tests order events by what the
    holders said, not by how fast a loaded machine starts them."""
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state), "aider", str(limit), str(release), str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )


def says(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """The next line `proc` prints ("" if none came within `timeout`)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else ""


def intervals(log: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_one_slot_two_processes_never_overlap(tmp_path: Path) -> None:
    log, release = tmp_path / "log.jsonl", tmp_path / "release"
    first = spawn(tmp_path, 1, release, log)
    assert says(first) == "held"
    others = [spawn(tmp_path, 1, release, log) for _ in range(2)]
    assert [says(p) for p in others] == ["waiting", "waiting"]
    release.touch()
    for p in [first, *others]:
        assert p.wait(timeout=60) == 0
    spans = sorted(intervals(log), key=lambda s: s["start"])
    assert len(spans) == 3
    for before, after in itertools.pairwise(spans):
        assert after["start"] >= before["end"]
    assert sum(s["waited"] for s in spans) == 2


def test_two_slots_let_two_run_together(tmp_path: Path) -> None:
    log, release = tmp_path / "log.jsonl", tmp_path / "release"
    procs = [spawn(tmp_path, 2, release, log) for _ in range(2)]
    assert [says(p) for p in procs] == ["held", "held"]  # both at once, neither waited
    release.touch()
    for p in procs:
        assert p.wait(timeout=60) == 0
    a, b = intervals(log)
    assert a["start"] < b["end"] and b["start"] < a["end"]  # they overlapped


def test_a_killed_holder_frees_its_slot(tmp_path: Path) -> None:
    holder = spawn(tmp_path, 1, tmp_path / "never", tmp_path / "unused.jsonl")
    assert says(holder) == "held"
    holder.kill()
    holder.wait()
    t0 = time.monotonic()
    with ToolSlots(tmp_path).acquire("aider", 1):
        pass
    assert time.monotonic() - t0 < 10  # at once, not after a stale-lock timeout


def test_threads_wait_and_on_wait_is_called_once(tmp_path: Path) -> None:
    slots = ToolSlots(tmp_path, poll_seconds=0.01)
    waits: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with slots.acquire("codex", 1):
            inside.set()
            release.wait(60)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(60)

    def on_wait() -> None:  # the holder lets go only once this one waits: no timer race
        waits.append("waiting")
        release.set()

    with slots.acquire("codex", 1, on_wait=on_wait):
        assert release.is_set()
    thread.join()
    assert waits == ["waiting"]
    with slots.acquire("gemini", 1, on_wait=lambda: waits.append("again")):
        pass  # a free slot: no wait callback
    assert waits == ["waiting"]


def test_waiting_uses_the_injected_sleep_and_can_be_cancelled(tmp_path: Path) -> None:
    sleeps: list[float] = []
    slots = ToolSlots(tmp_path, sleep=sleeps.append, poll_seconds=0.05)
    with (
        slots.acquire("claude", 1),
        pytest.raises(SlotWaitCancelled),
        slots.acquire("claude", 1, cancelled=lambda: len(sleeps) >= 3),
    ):
        pass
    assert sleeps == [0.05, 0.05, 0.05]
    assert sorted(p.name for p in (tmp_path / "slots").iterdir()) == ["claude.0.lock"]


def test_odd_tool_names_and_bad_limits(tmp_path: Path) -> None:
    slots = ToolSlots(tmp_path)
    with slots.acquire("my tool/../x", 1):
        pass
    assert [p.name for p in (tmp_path / "slots").iterdir()] == ["my_tool_.._x.0.lock"]
    with pytest.raises(ValueError, match="at least 1"), slots.acquire("aider", 0):
        pass
