"""The attempts table: an attempt recorded before its tool starts and finished after it,
read back for recovery, status, ETAs. A part of RunStore (state/store.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from uet_doit.state.connection import Connections, stored
from uet_doit.state.records import AttemptOutcome, AttemptRecord, StepState
from uet_doit.state.rows import attempt_row

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
        "charged_usd",
        "tool_session",
        "resumed_session",
    }
)


class AttemptMethods:
    """RunStore's methods on attempts (they share its private connections)."""

    _db: Connections
    path: Path

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
        step_row: bool = True,
    ) -> int:
        """Recorded before the tool starts, with the file its exit code will land in, so a
        runner killed at any instant leaves enough to find (and adopt) the tool. A running
        attempt marks its step running, unless `step_row` is False (a review: no step)."""
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
            if outcome == AttemptOutcome.RUNNING and step_row:
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
        pid: int | None = None,
        **fields: Any,
    ) -> None:
        """Record how an attempt ended, and with `step_state` its step's new state, in one
        transaction (a kill between the two can never leave them disagreeing). `pid`: the
        tool's, when it was not recorded while it ran (a local tool's)."""
        unknown = set(fields) - _FINISH_FIELDS
        if unknown:
            msg = f"finish_attempt: unknown fields {sorted(unknown)}"
            raise ValueError(msg)
        if pid:
            fields["pid"] = pid
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
        return attempt_row(row) if row else None

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
        return [attempt_row(r) for r in self._db.get().execute(sql + " ORDER BY id", args)]

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

    @stored
    def tool_durations(self, limit: int = 5000) -> list[tuple[str, str | None, float]]:
        """(step_id, tool, seconds) of the newest succeeded attempts of any bundle: what
        the scheduler expects of steps with no history of their own."""
        rows = self._db.get().execute(
            "SELECT step_id, tool, ended - started AS d FROM attempts WHERE outcome=? AND "
            "ended IS NOT NULL ORDER BY id DESC LIMIT ?",
            (AttemptOutcome.SUCCEEDED, limit),
        )
        return [(r["step_id"], r["tool"], float(r["d"])) for r in rows]

    @stored
    def history(self, step_id: str | None = None) -> list[AttemptRecord]:
        """Every attempt in this project (of one step, or of all), oldest first."""
        sql = "SELECT * FROM attempts" + (" WHERE step_id=?" if step_id else "") + " ORDER BY id"
        rows = self._db.get().execute(sql, (step_id,) if step_id else ())
        return [attempt_row(r) for r in rows]
