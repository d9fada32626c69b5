"""The run store's schema and its migrations, applied once per connection owner."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from uet_doit.errors import StateError

SCHEMA_VERSION = 8

MIGRATIONS: dict[int, str] = {
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
    # the attempt's full spec (JSON), so a resumed run can judge a tool a killed runner left
    # and the definition each step had when its run was planned (what `--resume` compares)
    2: """
    ALTER TABLE attempts ADD COLUMN spec TEXT;
    ALTER TABLE run_steps ADD COLUMN signature TEXT;
    """,
    # the step cache: what a cached attempt saved, the key it was found (or stored) under,
    # and each step's key parts at its last success (what `uet why` compares against)
    5: """
    ALTER TABLE attempts ADD COLUMN saved_usd REAL;
    ALTER TABLE attempts ADD COLUMN cache_key TEXT;
    CREATE TABLE step_keys (
        bundle_id TEXT NOT NULL, step_id TEXT NOT NULL, cache_key TEXT NOT NULL,
        parts TEXT NOT NULL, run_id TEXT, recorded REAL NOT NULL,
        PRIMARY KEY (bundle_id, step_id)
    );
    """,
    # isolated steps: each attempt's git worktree while it exists (kept ones for inspection)
    6: """
    CREATE TABLE workspaces (
        path TEXT PRIMARY KEY, branch TEXT NOT NULL, run_id TEXT NOT NULL,
        bundle_id TEXT NOT NULL, ws_id TEXT, step_id TEXT NOT NULL, attempt INTEGER NOT NULL,
        base TEXT NOT NULL, prepared TEXT, status TEXT NOT NULL, failure_class TEXT, message TEXT,
        created REAL NOT NULL, updated REAL
    );
    CREATE INDEX workspaces_step ON workspaces (bundle_id, step_id);
    """,
    # what budgets count for an attempt whose cost is unknown (state/unknown_cost.py)
    7: """
    ALTER TABLE attempts ADD COLUMN charged_usd REAL;
    """,
    # the AI tool's own session (claude/codex/gemini) and the one an attempt resumed
    8: """
    ALTER TABLE attempts ADD COLUMN tool_session TEXT;
    ALTER TABLE attempts ADD COLUMN resumed_session TEXT;
    """,
}


def corrupt_error(path: Path, exc: Exception) -> StateError:
    """A store that cannot be read as ours: say why and what to do, never reset it."""
    text = str(exc)
    if "not a database" in text or "file is encrypted" in text:
        why = "it is not a SQLite database (damaged, or another kind of file)"
    elif "malformed" in text:
        why = "SQLite reports the file as damaged (malformed pages)"
    elif "tables without a schema version" in text:
        why = "it is a SQLite database of another program (no uet schema version)"
    elif "no such table" in text or "no such column" in text:
        why = f"a uet table or column is missing ({text})"
    else:
        why = text
    return StateError(
        f"the run store {path} cannot be used: {why}",
        f"nothing was changed in it. Check it with `uet doctor`; keep a copy "
        f"(cp {path} {path}.bak) before trying `sqlite3 {path} .recover`; a project can start a "
        f"new store only once the old one is moved aside (its history and spend are then not "
        f"counted)",
    )


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema up to date; refuse stores written by a newer uet or another program."""
    try:  # read before writing anything: a foreign database is never touched
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = 0
        if "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
        if version == 0 and tables - {"meta", "sqlite_sequence"}:
            raise sqlite3.DatabaseError("tables without a schema version")
        if "meta" not in tables:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc) or "unable to open" in str(exc) or "disk" in str(exc):
            raise write_error(path, exc) from None
        raise corrupt_error(path, exc) from None
    except sqlite3.DatabaseError as exc:
        raise corrupt_error(path, exc) from None
    if version > SCHEMA_VERSION:
        msg = f"{path} was written by a newer uet-doit (schema {version} > {SCHEMA_VERSION})"
        raise StateError(msg, "upgrade uet-doit (pip install -U uet-doit)")
    for target in sorted(t for t in MIGRATIONS if version < t <= SCHEMA_VERSION):
        script = (
            "BEGIN IMMEDIATE;\n"
            + MIGRATIONS[target]
            + f"\nINSERT OR REPLACE INTO meta VALUES ('schema_version', '{target}');\nCOMMIT;"
        )
        try:
            conn.executescript(script)
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if "already exists" in str(exc) or "duplicate column" in str(exc):
                continue  # another process migrated first
            raise write_error(path, exc) from None


def check_tables(conn: sqlite3.Connection, path: Path) -> None:
    """A store whose tables were dropped or damaged is named as such, not half-used."""
    try:
        for table in ("runs", "run_steps", "attempts", "events", "breakers", "reservations"):
            conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise corrupt_error(path, exc) from None


def write_error(path: Path, exc: Exception) -> StateError:
    text = str(exc)
    if "full" in text:
        return StateError(
            f"the disk holding {path} is full ({text})",
            "free disk space, then resume the run: everything recorded so far is kept",
        )
    return StateError(
        f"cannot write the run store {path}: {text}",
        f"make {path.parent} writable (and check free disk space); nothing recorded is lost",
    )
