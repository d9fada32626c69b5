"""Per-tool slots: flock files shared by processes, threads and runs."""

from __future__ import annotations

import itertools
import json
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
state, tool, limit, hold, log = sys.argv[1:6]
waited = []
slots = ToolSlots(Path(state), poll_seconds=0.01)
with slots.acquire(tool, int(limit), on_wait=lambda: waited.append(1)):
    start = time.time()
    print("held", flush=True)
    time.sleep(float(hold))
    end = time.time()
with open(log, "a") as fh:
    fh.write(json.dumps({"start": start, "end": end, "waited": len(waited)}) + "\\n")
"""


def spawn(state: Path, limit: int, hold: float, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state), "aider", str(limit), str(hold), str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )


def intervals(log: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_one_slot_two_processes_never_overlap(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    procs = [spawn(tmp_path, 1, 0.2, log) for _ in range(3)]
    for p in procs:
        assert p.wait(timeout=30) == 0
    spans = sorted(intervals(log), key=lambda s: s["start"])
    assert len(spans) == 3
    for before, after in itertools.pairwise(spans):
        assert after["start"] >= before["end"]
    assert sum(s["waited"] for s in spans) >= 1


def test_two_slots_let_two_run_together(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    procs = [spawn(tmp_path, 2, 0.3, log) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=30) == 0
    a, b = intervals(log)
    assert a["start"] < b["end"] and b["start"] < a["end"]  # they overlapped


def test_a_killed_holder_frees_its_slot(tmp_path: Path) -> None:
    holder = spawn(tmp_path, 1, 60, tmp_path / "unused.jsonl")
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    t0 = time.monotonic()
    with ToolSlots(tmp_path).acquire("aider", 1):
        pass
    assert time.monotonic() - t0 < 1


def test_threads_wait_and_on_wait_is_called_once(tmp_path: Path) -> None:
    slots = ToolSlots(tmp_path, poll_seconds=0.01)
    waits: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with slots.acquire("codex", 1):
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(5)
    threading.Timer(0.1, release.set).start()
    with slots.acquire("codex", 1, on_wait=lambda: waits.append("waiting")):
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
