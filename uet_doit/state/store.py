"""The run store, `.uet/state.db`: runs, steps, attempts and events in SQLite (WAL).

Every write commits at once, so a run killed at any instant keeps everything recorded before
the kill. Each process and thread gets its own connection; `-P process` workers share the
file, and SQLite's locking keeps their writes whole. Costs, reservations and breakers are
kept by `store.ledger` (state/ledger.py), the step cache's keys by `store.cache`
(state/cache_book.py), isolated workspaces by their book; all of uet's SQL is in this package.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from uet_doit.state.attempt_methods import AttemptMethods
from uet_doit.state.cache_book import CacheBook
from uet_doit.state.connection import Connections, stored
from uet_doit.state.ledger import Ledger
from uet_doit.state.records import (
    AttemptOutcome,
    EventKind,
    EventRecord,
    RunRecord,
    RunState,
    StepRecord,
    StepState,
)
from uet_doit.state.rows import (
    event_row,
    pid_alive,
    run_row,
    state_dir,
    step_row,
)
from uet_doit.state.unknown_cost import UNKNOWN_SOURCES
from uet_doit.state.workspace_book import WorkspaceBook

DB_NAME = "state.db"


class RunStore(AttemptMethods):
    """One project's state.db behind typed methods; the connection is private."""

    def __init__(self, root: Path, *, memory: bool = False) -> None:
        self.root = root
        self.path = state_dir(root) / DB_NAME
        self._db = Connections(None if memory else self.path)
        self.ledger = Ledger(self._db, self.path)
        self.workspaces = WorkspaceBook(self._db, self.path)
        self.cache = CacheBook(self._db, self.path)

    @classmethod
    def in_memory(cls, root: Path | None = None) -> RunStore:
        """A store that lives in memory only: for tests of the policy, no files touched."""
        return cls(root or Path("."), memory=True)

    def exists(self) -> bool:
        return self.path.exists()

    def close(self) -> None:
        """Close its connections (every thread's); a later call opens new ones. A sqlite3
        connection is freed only by the cycle collector otherwise (its statement cache
        refers back to it), so a process running many runs closes what it is done with."""
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @stored
    def check_writable(self) -> None:
        """Fail before any step starts when .uet cannot be written (read-only, disk full)."""
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO meta VALUES ('probe', '1') ON CONFLICT DO NOTHING")
            conn.execute("DELETE FROM meta WHERE key='probe'")

    # -- runs -------------------------------------------------------------------------------
    @stored
    def start_run(
        self,
        run_id: str,
        bundle_id: str,
        *,
        bundle_file: str = "",
        bundle_hash: str = "",
        argv: Sequence[str] = (),
        jobs: int = 1,
        resume: bool = False,
        pid: int | None = None,
    ) -> None:
        pid = pid or os.getpid()
        with self._db.transaction() as conn:
            if resume:
                conn.execute(
                    "UPDATE runs SET status=?, ended=NULL, reason=NULL, pid=?, jobs=?, "
                    "bundle_hash=? WHERE run_id=?",
                    (RunState.RUNNING, pid, jobs, bundle_hash, run_id),
                )
                return
            conn.execute(
                "INSERT INTO runs (run_id, bundle_id, bundle_file, bundle_hash, argv, started,"
                " status, pid, jobs) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    bundle_id,
                    bundle_file,
                    bundle_hash,
                    json.dumps(list(argv)),
                    time.time(),
                    RunState.RUNNING,
                    pid,
                    jobs,
                ),
            )

    @stored
    def ensure_run(self, run_id: str, bundle_id: str, pid: int) -> bool:
        """Register a run started by plain `doit` from whichever of its steps is first."""
        cur = self._db.get().execute(
            "INSERT OR IGNORE INTO runs (run_id, bundle_id, started, status, pid) "
            "VALUES (?,?,?,?,?)",
            (run_id, bundle_id, time.time(), RunState.RUNNING, pid),
        )
        return cur.rowcount > 0

    @stored
    def end_run(self, run_id: str, status: RunState, reason: str | None = None) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE runs SET status=?, ended=?, reason=? WHERE run_id=?",
                (status, time.time(), reason, run_id),
            )
            conn.execute(
                "UPDATE run_steps SET status=? WHERE run_id=? AND status IN (?,?,?)",
                (
                    StepState.INTERRUPTED,
                    run_id,
                    StepState.RUNNING,
                    StepState.WAITING,
                    StepState.RETRYING,
                ),
            )
            conn.execute(
                "UPDATE attempts SET outcome=?, ended=coalesce(ended, ?) "
                "WHERE run_id=? AND outcome=?",
                (AttemptOutcome.INTERRUPTED, time.time(), run_id, AttemptOutcome.RUNNING),
            )

    @stored
    def mark_dead_runs(self) -> list[str]:
        """Runs still 'running' whose process is gone were killed: say so."""
        rows = self._db.get().execute(
            "SELECT run_id, pid FROM runs WHERE status=?", (RunState.RUNNING,)
        )
        dead = [r["run_id"] for r in rows if not pid_alive(r["pid"])]
        for run_id in dead:
            self.end_run(run_id, RunState.INTERRUPTED, "the process was killed")
        return dead

    @stored
    def run(self, run_id: str) -> RunRecord | None:
        row = self._db.get().execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return run_row(row) if row else None

    @stored
    def latest_run_id(self, bundle_id: str | None = None) -> str | None:
        sql = "SELECT run_id FROM runs" + (" WHERE bundle_id=?" if bundle_id else "")
        row = (
            self._db.get()
            .execute(
                sql + " ORDER BY started DESC, rowid DESC LIMIT 1",
                (bundle_id,) if bundle_id else (),
            )
            .fetchone()
        )
        return str(row[0]) if row else None

    @stored
    def running_run_of(self, pid: int) -> str | None:
        row = (
            self._db.get()
            .execute(
                "SELECT run_id FROM runs WHERE status=? AND pid=? ORDER BY started DESC LIMIT 1",
                (RunState.RUNNING, pid),
            )
            .fetchone()
        )
        return str(row[0]) if row else None

    @stored
    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The newest runs with what each cost."""
        unknown = ", ".join(repr(s) for s in sorted(UNKNOWN_SOURCES))
        rows = self._db.get().execute(
            "SELECT r.*, (SELECT coalesce(sum(cost_usd), 0) FROM attempts a "
            "WHERE a.run_id=r.run_id) AS cost, (SELECT count(DISTINCT step_id) FROM attempts u "
            f"WHERE u.run_id=r.run_id AND u.cost_usd IS NULL AND u.cost_source IN ({unknown})) "
            "AS unknown FROM runs r ORDER BY started DESC LIMIT ?",
            (limit,),
        )
        return [run_row(r, float(r["cost"]), int(r["unknown"])) for r in rows]

    @stored
    def bundle_ids(self) -> list[str]:
        return [r[0] for r in self._db.get().execute("SELECT DISTINCT bundle_id FROM runs")]

    # -- steps ------------------------------------------------------------------------------
    @stored
    def plan_steps(self, run_id: str, rows: Sequence[tuple[str, str, str, StepState, str]]) -> None:
        """(step_id, ws_id, tool, state, signature) of every step, before the run starts."""
        now = time.time()
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO run_steps (run_id, step_id, ws_id, tool, status, updated, signature) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT (run_id, step_id) DO UPDATE SET "
                "status=CASE WHEN run_steps.status IN (?, ?) THEN run_steps.status "
                "ELSE excluded.status END, "
                "message=CASE WHEN run_steps.status IN (?, ?) THEN run_steps.message END, "
                "updated=excluded.updated, signature=excluded.signature",
                [
                    (
                        run_id,
                        s,
                        w,
                        t,
                        st,
                        now,
                        sig,
                        StepState.SUCCEEDED,
                        StepState.UP_TO_DATE,
                        StepState.SUCCEEDED,
                        StepState.UP_TO_DATE,
                    )
                    for s, w, t, st, sig in rows
                ],
            )

    @stored
    def step_signatures(self, run_id: str) -> dict[str, str]:
        """The definition each step of the run had when the run was planned."""
        rows = self._db.get().execute(
            "SELECT step_id, signature FROM run_steps WHERE run_id=? AND signature IS NOT NULL",
            (run_id,),
        )
        return {r[0]: r[1] for r in rows}

    @stored
    def set_step_state(
        self,
        run_id: str,
        step_id: str,
        status: StepState,
        message: str | None = None,
        ws_id: str | None = None,
        tool: str | None = None,
    ) -> None:
        self._db.get().execute(
            "INSERT INTO run_steps (run_id, step_id, ws_id, tool, status, updated, message) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT (run_id, step_id) DO UPDATE SET "
            "status=excluded.status, updated=excluded.updated, message=excluded.message, "
            "tool=coalesce(excluded.tool, run_steps.tool)",
            (run_id, step_id, ws_id, tool, status, time.time(), message),
        )

    @stored
    def set_step_states(
        self, rows: Sequence[tuple[str, str, StepState, str | None, str | None, str | None]]
    ) -> None:
        """Many (run_id, step_id, state, ws_id, tool, message) at once: one commit."""
        now = time.time()
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO run_steps (run_id, step_id, ws_id, tool, status, updated, message) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT (run_id, step_id) DO UPDATE SET "
                "status=excluded.status, updated=excluded.updated, message=excluded.message",
                [(r, s, w, t, st, now, m) for r, s, st, w, t, m in rows],
            )

    @stored
    def run_steps(self, run_id: str) -> list[StepRecord]:
        rows = self._db.get().execute(
            "SELECT * FROM run_steps WHERE run_id=? ORDER BY rowid", (run_id,)
        )
        return [step_row(r) for r in rows]

    @stored
    def step_states(self, run_id: str) -> dict[str, StepState]:
        """step_id -> state of each step of a run (no record built: 10k steps read fast)."""
        rows = self._db.get().execute(
            "SELECT step_id, status FROM run_steps WHERE run_id=?", (run_id,)
        )
        return {step_id: StepState(status) for step_id, status in rows}

    @stored
    def first_step_in(self, run_id: str, state: StepState) -> str | None:
        row = (
            self._db.get()
            .execute(
                "SELECT step_id FROM run_steps WHERE run_id=? AND status=? LIMIT 1",
                (run_id, state),
            )
            .fetchone()
        )
        return str(row[0]) if row else None

    # -- events -----------------------------------------------------------------------------
    @stored
    def event(
        self, run_id: str | None, kind: EventKind, step_id: str | None = None, **data: Any
    ) -> None:
        self._db.get().execute(
            "INSERT INTO events (run_id, ts, kind, step_id, data) VALUES (?,?,?,?,?)",
            (run_id, time.time(), EventKind(kind), step_id, json.dumps(data, default=str)),
        )

    @stored
    def events(
        self, run_id: str, after_id: int = 0, kinds: Iterable[EventKind] = ()
    ) -> list[EventRecord]:
        wanted = list(kinds)
        sql = "SELECT * FROM events WHERE run_id=? AND id>?"
        if wanted:
            sql += f" AND kind IN ({','.join('?' * len(wanted))})"
        rows = self._db.get().execute(sql + " ORDER BY id", (run_id, after_id, *wanted))
        return [event_row(r) for r in rows]

    @stored
    def events_of(self, kind: EventKind) -> list[EventRecord]:
        """Every event of one kind in this project, oldest first (all runs)."""
        rows = self._db.get().execute("SELECT * FROM events WHERE kind=? ORDER BY id", (kind,))
        return [event_row(r) for r in rows]
