"""doit's decisions about steps (up to date, blocked, ...) recorded in the run store."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from uet_doit.run.doit import decisions
from uet_doit.state.records import StepState


@dataclass(frozen=True)
class Ctx:
    """What the recorder needs of a RunContext: a key with a run id."""

    run_id: str


def test_a_step_recorded_during_a_flush_from_a_worker_thread_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under `-P thread` a worker's execute_task flushes while the main thread records the
    next up-to-date steps: none of them may be lost (they were: 5 of 13 steps done)."""
    ctx = Ctx("r-1")
    written: list[str] = []
    recorder = decisions.DecisionRecorder()
    late = threading.Thread(target=lambda: recorder.record(SimpleNamespace(name="b"), UP))

    def set_step_states(rows: list[tuple[Any, ...]]) -> None:
        names = [str(row[1]) for row in rows]  # the statement is made of the rows first
        if not written and late.ident is None:
            late.start()  # the main thread records a step while this write is under way
            late.join(0.5)
        written.extend(names)

    store = SimpleNamespace(run=lambda _run_id: object(), set_step_states=set_step_states)
    monkeypatch.setattr(decisions.Runtime, "for_context", lambda _ctx: SimpleNamespace(store=store))
    monkeypatch.setattr(decisions, "_ctx_of", lambda _task: ctx)
    monkeypatch.setattr(decisions, "step_of", lambda task: task.name)
    recorder.record(SimpleNamespace(name="a"), UP)
    recorder.flush()  # a worker thread's execute_task
    late.join()
    recorder.flush()  # complete_run
    assert sorted(written) == ["a", "b"]


UP = StepState.UP_TO_DATE
