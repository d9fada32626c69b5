"""The run store, `.uet/state.db`: runs, attempts, events, costs and breakers in SQLite (WAL).

Every write commits at once, so a run killed at any instant keeps everything recorded before
the kill. Each process and thread gets its own connection; `-P process` workers share the
file, and SQLite's locking keeps their writes whole.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from uet_doit.errors import StateError

SCHEMA_VERSION = 1
STATE_DIR = ".uet"
DB_NAME = "state.db"

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, bundle_id TEXT NOT NULL, bundle_file TEXT, bundle_hash TEXT,
        argv TEXT, started REAL NOT NULL, ended REAL, status TEXT NOT NULL, reason TEXT,
        pid INTEGER, jobs INTEGER DEFAULT 1
    );
    CREATE TABLE run_steps (
        run_id TEXT NOT NULL, step_id TEXT NOT NULL, ws_id TEXT, tool TEXT, status TEXT NOT NULL,
        updated REAL, message TEXT, PRIMARY KEY (run_id, step_id)
    );
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, bundle_id TEXT NOT NULL,
        ws_id TEXT, step_id TEXT NOT NULL, tool TEXT, attempt INTEGER NOT NULL,
        started REAL NOT NULL, ended REAL, exit_code INTEGER, outcome TEXT NOT NULL,
        failure_class TEXT, message TEXT, cost_usd REAL, tokens_in INTEGER, tokens_out INTEGER,
        model TEXT, cost_source TEXT, stdout_path TEXT, stderr_path TEXT, worker TEXT,
        signature TEXT, fingerprint TEXT, fallback_from TEXT, pid INTEGER, exit_file TEXT,
        session TEXT
    );
    CREATE INDEX attempts_step ON attempts (bundle_id, step_id, id);
    CREATE INDEX attempts_run ON attempts (run_id, step_id, id);
    CREATE INDEX run_steps_status ON run_steps (run_id, status);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, ts REAL NOT NULL, kind TEXT NOT NULL,
        step_id TEXT, data TEXT
    );
    CREATE INDEX events_run ON events (run_id, id);
    CREATE TABLE breakers (
        tool TEXT PRIMARY KEY, state TEXT NOT NULL, failures INTEGER NOT NULL DEFAULT 0,
        last_failure REAL, opened_at REAL, probe_started REAL
    );
    CREATE TABLE reservations (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, bundle_id TEXT NOT NULL,
        ws_id TEXT, step_id TEXT NOT NULL, amount REAL NOT NULL, created REAL NOT NULL,
        session TEXT
    );
    CREATE TABLE cost_resets (bundle_id TEXT PRIMARY KEY, reset_at REAL NOT NULL);
    """,
}

#: attempt outcomes and step states a user sees
RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "running", "succeeded", "failed", "interrupted"
FINISHED_STEP_STATES = frozenset({"succeeded", "up_to_date", "skipped"})


def state_dir(root: Path) -> Path:
    return root / STATE_DIR


def new_run_id(bundle_id: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    return f"{bundle_id}-{stamp}"


SESSION_ENV = "UET_SESSION"


def current_session() -> str:
    """One id per runner process tree (workers inherit it): tells the attempts of this
    runner from those a killed one left behind, whatever pids the kernel reuses."""
    session = os.environ.get(SESSION_ENV)
    if not session:
        import uuid

        session = os.environ[SESSION_ENV] = uuid.uuid4().hex
    return session


def new_session() -> str:
    os.environ.pop(SESSION_ENV, None)
    return current_session()


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


class RunStore:
    """Connection-per-thread access to one project's state.db."""

    _shared: ClassVar[dict[tuple[str, int], RunStore]] = {}

    @classmethod
    def shared(cls, root: Path) -> RunStore:
        """One store per project and process: steps reuse its per-thread connections."""
        key = (str(root), os.getpid())
        store = cls._shared.get(key)
        if store is None:
            store = cls._shared[key] = cls(root)
        return store

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = state_dir(root) / DB_NAME
        self._local = threading.local()
        self._checked = False
        self._known_runs: set[str] = set()

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from None
        except OSError as exc:
            msg = f"cannot use the run store {self.path}: {exc.strerror or exc}"
            raise StateError(
                msg, f"make {directory} writable (and check free disk space)"
            ) from None
        if not self._checked:
            self._migrate(conn)
            self._checked = True
        return conn

    def _corrupt(self, exc: Exception) -> StateError:
        return StateError(
            f"the run store {self.path} is not a uet state database ({exc})",
            f"move it aside (mv {self.path} {self.path}.bad) to start a new one; "
            "nothing else is read from it",
        )

    @property
    def conn(self) -> sqlite3.Connection:
        key = os.getpid()
        cached = getattr(self._local, "conn", None)
        if cached is None or cached[0] != key:
            self._local.conn = (key, self._connect())
        conn: sqlite3.Connection = self._local.conn[1]
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if (
                version == 0
                and conn.execute("SELECT count(*) FROM sqlite_master WHERE name='runs'").fetchone()[
                    0
                ]
            ):
                raise sqlite3.DatabaseError("tables without a schema version")
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from None
        except OSError as exc:  # pragma: no cover - disk full while creating
            raise StateError(f"cannot write {self.path}: {exc}") from None
        if version > SCHEMA_VERSION:
            msg = (
                f"{self.path} was written by a newer uet-doit (schema {version} > {SCHEMA_VERSION})"
            )
            raise StateError(msg, "upgrade uet-doit (pip install -U uet-doit)")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            script = (
                "BEGIN IMMEDIATE;\n"
                + _MIGRATIONS[target]
                + f"\nINSERT OR REPLACE INTO meta VALUES ('schema_version', '{target}');\nCOMMIT;"
            )
            try:
                conn.executescript(script)
            except sqlite3.OperationalError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if "already exists" in str(exc):
                    continue  # another process migrated first
                raise StateError(f"cannot write {self.path}: {exc}") from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that takes the lock first, so check-and-reserve is atomic."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def check_writable(self) -> None:
        """Fail before any step starts when .uet cannot be written (read-only, disk full)."""
        try:
            self.conn.execute("INSERT INTO events (ts, kind) VALUES (?, 'probe')", (time.time(),))
            self.conn.execute("DELETE FROM events WHERE kind='probe'")
        except sqlite3.OperationalError as exc:
            msg = f"cannot write the run store {self.path}: {exc}"
            raise StateError(msg, "free disk space or make .uet/ writable") from None

    # -- runs ---------------------------------------------------------------------------------
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
    ) -> None:
        now = time.time()
        with self.transaction() as conn:
            if resume:
                conn.execute(
                    "UPDATE runs SET status='running', ended=NULL, reason=NULL, pid=?, jobs=?, "
                    "bundle_hash=? WHERE run_id=?",
                    (os.getpid(), jobs, bundle_hash, run_id),
                )
            else:
                conn.execute(
                    "INSERT INTO runs (run_id, bundle_id, bundle_file, bundle_hash, argv, started,"
                    " status, pid, jobs) VALUES (?,?,?,?,?,?, 'running', ?, ?)",
                    (
                        run_id,
                        bundle_id,
                        bundle_file,
                        bundle_hash,
                        json.dumps(list(argv)),
                        now,
                        os.getpid(),
                        jobs,
                    ),
                )

    def ensure_run(self, run_id: str, bundle_id: str) -> None:
        """Register a run started by plain `doit` (dodo.py), once, from whichever step is first."""
        if run_id in self._known_runs:
            return
        self._known_runs.add(run_id)
        self.conn.execute(
            "INSERT OR IGNORE INTO runs (run_id, bundle_id, started, status, pid) "
            "VALUES (?,?,?, 'running', ?)",
            (run_id, bundle_id, time.time(), os.getppid() if _in_worker() else os.getpid()),
        )

    def plan_steps(self, run_id: str, rows: Sequence[tuple[str, str, str, str]]) -> None:
        """(step_id, ws_id, tool, status) for every step of the run, before it starts."""
        now = time.time()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO run_steps (run_id, step_id, ws_id, tool, status, updated) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT (run_id, step_id) DO UPDATE SET "
                "status=excluded.status, updated=excluded.updated, message=NULL "
                "WHERE run_steps.status NOT IN ('succeeded', 'up_to_date')",
                [(run_id, s, w, t, st, now) for s, w, t, st in rows],
            )

    def set_step_status(
        self,
        run_id: str,
        step_id: str,
        status: str,
        message: str | None = None,
        ws_id: str | None = None,
        tool: str | None = None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO run_steps (run_id, step_id, ws_id, tool, status, updated, message) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT (run_id, step_id) DO UPDATE SET "
            "status=excluded.status, updated=excluded.updated, message=excluded.message",
            (run_id, step_id, ws_id, tool, status, time.time(), message),
        )

    def set_step_statuses(
        self, rows: Sequence[tuple[str, str, str, str | None, str | None]]
    ) -> None:
        """Many (run_id, step_id, status, ws_id, tool) at once: one commit, not one each."""
        now = time.time()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO run_steps (run_id, step_id, ws_id, tool, status, updated) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT (run_id, step_id) DO UPDATE SET "
                "status=excluded.status, updated=excluded.updated, message=NULL",
                [(r, s, w, t, st, now) for r, s, st, w, t in rows],
            )

    def end_run(self, run_id: str, status: str, reason: str | None = None) -> None:
        self.conn.execute(
            "UPDATE runs SET status=?, ended=?, reason=? WHERE run_id=?",
            (status, time.time(), reason, run_id),
        )
        self.conn.execute(
            "UPDATE run_steps SET status='interrupted' WHERE run_id=? AND status IN "
            "('running', 'waiting')",
            (run_id,),
        )

    def mark_dead_runs(self) -> list[str]:
        """Runs still 'running' whose process is gone were killed: say so."""
        dead = [
            r["run_id"]
            for r in self.conn.execute("SELECT run_id, pid FROM runs WHERE status='running'")
            if not pid_alive(r["pid"])
        ]
        for run_id in dead:
            self.end_run(run_id, INTERRUPTED, "the process was killed")
            self.conn.execute(
                "UPDATE attempts SET outcome='interrupted', ended=coalesce(ended, ?) "
                "WHERE run_id=? AND outcome='running'",
                (time.time(), run_id),
            )
        return dead

    def run(self, run_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM runs WHERE run_id=?", (run_id,)
        ).fetchone()
        return row

    def latest_run_id(self, bundle_id: str | None = None) -> str | None:
        sql = "SELECT run_id FROM runs" + (" WHERE bundle_id=?" if bundle_id else "")
        row = self.conn.execute(
            sql + " ORDER BY started DESC, rowid DESC LIMIT 1", (bundle_id,) if bundle_id else ()
        ).fetchone()
        return str(row[0]) if row else None

    def runs(self, limit: int = 20) -> list[sqlite3.Row]:
        return list(
            self.conn.execute(
                "SELECT r.*, (SELECT coalesce(sum(cost_usd), 0) FROM attempts a "
                "WHERE a.run_id=r.run_id) AS cost FROM runs r ORDER BY started DESC LIMIT ?",
                (limit,),
            )
        )

    def run_steps(self, run_id: str) -> list[sqlite3.Row]:
        return list(
            self.conn.execute("SELECT * FROM run_steps WHERE run_id=? ORDER BY rowid", (run_id,))
        )

    # -- attempts -----------------------------------------------------------------------------
    def begin_attempt(
        self,
        run_id: str,
        bundle_id: str,
        ws_id: str,
        step_id: str,
        tool: str,
        attempt: int,
        stdout_path: str,
        stderr_path: str,
        fallback_from: str | None = None,
        exit_file: str | None = None,
    ) -> int:
        """Recorded before the tool starts, with the file its exit code will land in, so a
        runner killed at any instant leaves enough to find (and adopt) the tool."""
        now = time.time()
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO attempts (run_id, bundle_id, ws_id, step_id, tool, attempt, started,"
                " outcome, stdout_path, stderr_path, worker, fallback_from, exit_file, session) "
                "VALUES (?,?,?,?,?,?,?, 'running', ?,?,?,?,?,?)",
                (
                    run_id,
                    bundle_id,
                    ws_id,
                    step_id,
                    tool,
                    attempt,
                    now,
                    stdout_path,
                    stderr_path,
                    f"{os.getpid()}:{threading.get_ident()}",
                    fallback_from,
                    exit_file,
                    current_session(),
                ),
            )
            conn.execute(
                "INSERT INTO run_steps (run_id, step_id, ws_id, tool, status, updated) "
                "VALUES (?,?,?,?, 'running', ?) ON CONFLICT (run_id, step_id) DO UPDATE SET "
                "status='running', updated=excluded.updated, tool=excluded.tool",
                (run_id, step_id, ws_id, tool, now),
            )
        return int(cur.lastrowid or 0)

    def set_attempt_process(self, attempt_id: int, pid: int) -> None:
        self.conn.execute("UPDATE attempts SET pid=? WHERE id=?", (pid, attempt_id))

    def latest_attempt(self, bundle_id: str, step_id: str) -> sqlite3.Row | None:
        """The newest attempt of a step in this project, with its run's status."""
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT a.*, r.status AS run_status FROM attempts a JOIN runs r USING (run_id) "
            "WHERE a.bundle_id=? AND a.step_id=? ORDER BY a.id DESC LIMIT 1",
            (bundle_id, step_id),
        ).fetchone()
        return row

    def finish_attempt(self, attempt_id: int, outcome: str, **fields: Any) -> None:
        """Record how an attempt ended (one statement, committed at once)."""
        allowed = {
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
        }
        cols = {k: v for k, v in fields.items() if k in allowed}
        sets = ", ".join(f"{k}=?" for k in cols)
        self.conn.execute(
            f"UPDATE attempts SET outcome=?, ended=?{', ' + sets if sets else ''} WHERE id=?",
            (outcome, time.time(), *cols.values(), attempt_id),
        )

    def attempts(self, run_id: str, step_id: str | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM attempts WHERE run_id=?"
        args: tuple[Any, ...] = (run_id,)
        if step_id:
            sql += " AND step_id=?"
            args += (step_id,)
        return list(self.conn.execute(sql + " ORDER BY id", args))

    def durations(self, bundle_id: str) -> dict[str, float]:
        """Median past duration per step, for ETAs."""
        rows = self.conn.execute(
            "SELECT step_id, ended - started AS d FROM attempts WHERE bundle_id=? AND "
            "outcome='succeeded' AND ended IS NOT NULL ORDER BY id DESC LIMIT 20000",
            (bundle_id,),
        )
        per: dict[str, list[float]] = {}
        for r in rows:
            per.setdefault(r["step_id"], []).append(float(r["d"]))
        return {k: sorted(v)[len(v) // 2] for k, v in per.items()}

    # -- events -------------------------------------------------------------------------------
    def event(self, run_id: str | None, kind: str, step_id: str | None = None, **data: Any) -> None:
        self.conn.execute(
            "INSERT INTO events (run_id, ts, kind, step_id, data) VALUES (?,?,?,?,?)",
            (run_id, time.time(), kind, step_id, json.dumps(data, default=str)),
        )

    def events(self, run_id: str, after_id: int = 0) -> list[sqlite3.Row]:
        return list(
            self.conn.execute(
                "SELECT * FROM events WHERE run_id=? AND id>? ORDER BY id", (run_id, after_id)
            )
        )


def _in_worker() -> bool:
    import multiprocessing

    return multiprocessing.parent_process() is not None
