"""The run store, `.uet/state.db`: runs, steps, attempts and events in SQLite (WAL).

Every write commits at once, so a run killed at any instant keeps everything recorded before
the kill. Each process and thread gets its own connection; `-P process` workers share the
file, and SQLite's locking keeps their writes whole. Costs, reservations and breakers are
kept by `store.ledger` (state/ledger.py); all of uet's SQL is in this package.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from uet_doit.state.connection import Connections, row_dict, stored
from uet_doit.state.ledger import Ledger
from uet_doit.state.records import (
    AttemptOutcome,
    AttemptRecord,
    EventKind,
    EventRecord,
    RunRecord,
    RunState,
    StepKeyRecord,
    StepRecord,
    StepState,
)
from uet_doit.state.workspace_book import WorkspaceBook

STATE_DIR = ".uet"
DB_NAME = "state.db"
_FINISH_FIELDS = frozenset(
    {
        "exit_code",
        "failure_class",
        "message",
        "cost_usd",
        "tokens_in",
        "tokens_out",
        "model",
        "cost_source",
        "signature",
        "fingerprint",
        "worker",
        "saved_usd",
        "cache_key",
    }
)


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


def _run(row: Any, cost: float = 0.0) -> RunRecord:
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
    )


def _step(row: Any) -> StepRecord:
    return StepRecord(
        row["run_id"],
        row["step_id"],
        row["ws_id"],
        row["tool"],
        StepState(row["status"]),
        row["updated"],
        row["message"],
    )


def _attempt(row: Any) -> AttemptRecord:
    data = row_dict(row)
    data.pop("spec", None)
    data["outcome"] = AttemptOutcome(data["outcome"])
    if "run_status" in data:
        data["run_status"] = RunState(data["run_status"]) if data["run_status"] else None
    return AttemptRecord(**data)


def _event(row: Any) -> EventRecord:
    return EventRecord(
        row["id"],
        row["run_id"],
        row["ts"],
        EventKind(row["kind"]),
        row["step_id"],
        EventRecord.decode(row["data"]),
    )


class RunStore:
    """One project's state.db behind typed methods; the connection is private."""

    def __init__(self, root: Path, *, memory: bool = False) -> None:
        self.root = root
        self.path = state_dir(root) / DB_NAME
        self._db = Connections(None if memory else self.path)
        self.ledger = Ledger(self._db, self.path)
        self.workspaces = WorkspaceBook(self._db, self.path)

    @classmethod
    def in_memory(cls, root: Path | None = None) -> RunStore:
        """A store that lives in memory only: for tests of the policy, no files touched."""
        return cls(root or Path("."), memory=True)

    def exists(self) -> bool:
        return self.path.exists()

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
        return _run(row) if row else None

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
        rows = self._db.get().execute(
            "SELECT r.*, (SELECT coalesce(sum(cost_usd), 0) FROM attempts a "
            "WHERE a.run_id=r.run_id) AS cost FROM runs r ORDER BY started DESC LIMIT ?",
            (limit,),
        )
        return [_run(r, float(r["cost"])) for r in rows]

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
        return [_step(r) for r in rows]

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

    # -- attempts ---------------------------------------------------------------------------
    @stored
    def begin_attempt(
        self,
        run_id: str,
        bundle_id: str,
        ws_id: str,
        step_id: str,
        tool: str,
        attempt: int,
        *,
        session: str,
        stdout_path: str = "",
        stderr_path: str = "",
        fallback_from: str | None = None,
        exit_file: str | None = None,
        spec: str | None = None,
        worker: str | None = None,
        outcome: AttemptOutcome = AttemptOutcome.RUNNING,
    ) -> int:
        """Recorded before the tool starts, with the file its exit code will land in, so a
        runner killed at any instant leaves enough to find (and adopt) the tool."""
        now = time.time()
        with self._db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO attempts (run_id, bundle_id, ws_id, step_id, tool, attempt, started,"
                " outcome, stdout_path, stderr_path, worker, fallback_from, exit_file, session,"
                " spec) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    bundle_id,
                    ws_id,
                    step_id,
                    tool,
                    attempt,
                    now,
                    outcome,
                    stdout_path,
                    stderr_path,
                    worker,
                    fallback_from,
                    exit_file,
                    session,
                    spec,
                ),
            )
            if outcome == AttemptOutcome.RUNNING:
                conn.execute(
                    "INSERT INTO run_steps (run_id, step_id, ws_id, tool, status, updated) "
                    "VALUES (?,?,?,?,?,?) ON CONFLICT (run_id, step_id) DO UPDATE SET "
                    "status=excluded.status, updated=excluded.updated, tool=excluded.tool",
                    (run_id, step_id, ws_id, tool, StepState.RUNNING, now),
                )
        return int(cur.lastrowid or 0)

    @stored
    def set_attempt_process(self, attempt_id: int, pid: int) -> None:
        self._db.get().execute("UPDATE attempts SET pid=? WHERE id=?", (pid, attempt_id))

    @stored
    def finish_attempt(
        self,
        attempt_id: int,
        outcome: AttemptOutcome,
        *,
        step_state: StepState | None = None,
        step_message: str | None = None,
        **fields: Any,
    ) -> None:
        """Record how an attempt ended, and with `step_state` its step's new state, in one
        transaction (a kill between the two can never leave them disagreeing)."""
        unknown = set(fields) - _FINISH_FIELDS
        if unknown:
            msg = f"finish_attempt: unknown fields {sorted(unknown)}"
            raise ValueError(msg)
        sets = "".join(f", {k}=?" for k in fields)
        now = time.time()
        update = f"UPDATE attempts SET outcome=?, ended=?{sets} WHERE id=?"
        if step_state is None:
            self._db.get().execute(update, (outcome, now, *fields.values(), attempt_id))
            return
        with self._db.transaction() as conn:
            conn.execute(update, (outcome, now, *fields.values(), attempt_id))
            conn.execute(
                "UPDATE run_steps SET status=?, updated=?, message=?, "
                "tool=(SELECT tool FROM attempts WHERE id=?) WHERE (run_id, step_id) = "
                "(SELECT run_id, step_id FROM attempts WHERE id=?)",
                (step_state, now, step_message, attempt_id, attempt_id),
            )

    @stored
    def latest_attempt(self, bundle_id: str, step_id: str) -> AttemptRecord | None:
        """The newest attempt of a step in this project, with its run's status."""
        row = (
            self._db.get()
            .execute(
                "SELECT a.*, r.status AS run_status FROM attempts a JOIN runs r USING (run_id) "
                "WHERE a.bundle_id=? AND a.step_id=? ORDER BY a.id DESC LIMIT 1",
                (bundle_id, step_id),
            )
            .fetchone()
        )
        return _attempt(row) if row else None

    @stored
    def attempt_spec(self, attempt_id: int) -> str | None:
        row = (
            self._db.get().execute("SELECT spec FROM attempts WHERE id=?", (attempt_id,)).fetchone()
        )
        return str(row[0]) if row and row[0] else None

    @stored
    def attempts(self, run_id: str, step_id: str | None = None) -> list[AttemptRecord]:
        sql = "SELECT * FROM attempts WHERE run_id=?"
        args: tuple[Any, ...] = (run_id,)
        if step_id:
            sql += " AND step_id=?"
            args += (step_id,)
        return [_attempt(r) for r in self._db.get().execute(sql + " ORDER BY id", args)]

    @stored
    def max_attempt(self, run_id: str, step_id: str) -> int:
        """The number of the step's last attempt in this run (0: none yet)."""
        row = (
            self._db.get()
            .execute(
                "SELECT coalesce(max(attempt), 0) FROM attempts WHERE run_id=? AND step_id=?",
                (run_id, step_id),
            )
            .fetchone()
        )
        return int(row[0])

    @stored
    def durations(self, bundle_id: str) -> dict[str, float]:
        """Median past duration per step, for ETAs."""
        rows = self._db.get().execute(
            "SELECT step_id, ended - started AS d FROM attempts WHERE bundle_id=? AND "
            "outcome=? AND ended IS NOT NULL ORDER BY id DESC LIMIT 20000",
            (bundle_id, AttemptOutcome.SUCCEEDED),
        )
        per: dict[str, list[float]] = {}
        for r in rows:
            per.setdefault(r["step_id"], []).append(float(r["d"]))
        return {k: sorted(v)[len(v) // 2] for k, v in per.items()}

    # -- step cache -------------------------------------------------------------------------
    @stored
    def record_step_key(
        self, bundle_id: str, step_id: str, cache_key: str, parts: dict[str, str], run_id: str
    ) -> None:
        """A step's key parts at its success: what `uet why` compares the next key with."""
        self._db.get().execute(
            "INSERT OR REPLACE INTO step_keys (bundle_id, step_id, cache_key, parts, run_id,"
            " recorded) VALUES (?,?,?,?,?,?)",
            (bundle_id, step_id, cache_key, json.dumps(parts, sort_keys=True), run_id, time.time()),
        )

    @stored
    def step_key(self, bundle_id: str, step_id: str) -> StepKeyRecord | None:
        row = (
            self._db.get()
            .execute(
                "SELECT * FROM step_keys WHERE bundle_id=? AND step_id=?", (bundle_id, step_id)
            )
            .fetchone()
        )
        if row is None:
            return None
        return StepKeyRecord(
            row["bundle_id"],
            row["step_id"],
            row["cache_key"],
            EventRecord.decode(row["parts"]),
            row["run_id"],
            row["recorded"],
        )

    @stored
    def saved_by_cache(
        self, bundle_id: str | None = None, run_id: str | None = None
    ) -> tuple[int, float]:
        """Cached attempts and what the attempts that made their entries cost."""
        sql = "SELECT count(*), coalesce(sum(saved_usd), 0) FROM attempts WHERE outcome=?"
        args: list[Any] = [AttemptOutcome.CACHED]
        if bundle_id:
            sql += " AND bundle_id=?"
            args.append(bundle_id)
        if run_id:
            sql += " AND run_id=?"
            args.append(run_id)
        row = self._db.get().execute(sql, args).fetchone()
        return int(row[0]), float(row[1])

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
        return [_event(r) for r in rows]
