"""Rows of the run store as typed records, and the facts about processes and folders the
store and its readers share."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from uet_doit.state.connection import row_dict
from uet_doit.state.records import (
    AttemptOutcome,
    AttemptRecord,
    EventKind,
    EventRecord,
    RunRecord,
    RunState,
    StepRecord,
    StepState,
)

STATE_DIR = ".uet"


def state_dir(root: Path) -> Path:
    return root / STATE_DIR


def pid_alive(pid: int | None) -> bool:
    """True while `pid` runs; a zombie (killed, not yet reaped) counts as gone."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def run_row(row: Any, cost: float = 0.0, unknown_cost_steps: int = 0) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"],
        bundle_id=row["bundle_id"],
        bundle_file=row["bundle_file"],
        bundle_hash=row["bundle_hash"],
        argv=tuple(json.loads(row["argv"])) if row["argv"] else (),
        started=row["started"],
        ended=row["ended"],
        status=RunState(row["status"]),
        reason=row["reason"],
        pid=row["pid"],
        jobs=row["jobs"] or 1,
        cost=cost,
        unknown_cost_steps=unknown_cost_steps,
    )


def step_row(row: Any) -> StepRecord:
    return StepRecord(
        row["run_id"],
        row["step_id"],
        row["ws_id"],
        row["tool"],
        StepState(row["status"]),
        row["updated"],
        row["message"],
    )


def attempt_row(row: Any) -> AttemptRecord:
    data = row_dict(row)
    data.pop("spec", None)
    data["outcome"] = AttemptOutcome(data["outcome"])
    if "run_status" in data:
        data["run_status"] = RunState(data["run_status"]) if data["run_status"] else None
    return AttemptRecord(**data)


def event_row(row: Any) -> EventRecord:
    return EventRecord(
        row["id"],
        row["run_id"],
        row["ts"],
        EventKind(row["kind"]),
        row["step_id"],
        EventRecord.decode(row["data"]),
    )
