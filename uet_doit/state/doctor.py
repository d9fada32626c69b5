"""`uet doctor`: look at a project's state files and say what is wrong, changing nothing."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from uet_doit.state.doit_backend import dep_file_problem
from uet_doit.state.schema import SCHEMA_VERSION

SQLITE_HEADER = b"SQLite format 3\x00"
_TABLES = ("runs", "run_steps", "attempts", "events", "breakers", "reservations")


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str
    advice: str = ""


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def check_store(root: Path) -> list[Finding]:
    """Every finding about `.uet/state.db` (and doit's `.doit.db`), read-only."""
    folder = root / ".uet"
    db = folder / "state.db"
    found: list[Finding] = []
    if not folder.exists():
        return [Finding(True, f"{folder}: no run store yet (created by the first `uet run`)")]
    if not os.access(folder, os.W_OK):
        found.append(Finding(False, f"{folder} is not writable", f"chmod u+w {folder}"))
    if not db.exists():
        return [*found, Finding(True, f"{db}: no run store yet")]
    found.extend(_check_db(db))
    doit_db = root / ".doit.db"
    if doit_db.exists():
        try:
            problem = dep_file_problem(doit_db)
            if problem is not None:
                raise sqlite3.DatabaseError(problem)
            with _read_only(doit_db) as conn:
                conn.execute("SELECT count(*) FROM doit_tasks").fetchone()
            found.append(Finding(True, f"{doit_db}: doit's task state is readable"))
        except sqlite3.DatabaseError as exc:
            found.append(
                Finding(
                    False,
                    f"{doit_db}: {exc}",
                    "doit's up-to-date records only: moving it aside makes every step run once "
                    "more (the run store and its spend are kept)",
                )
            )
    return found


def _check_db(db: Path) -> list[Finding]:
    size = db.stat().st_size
    if size == 0:
        return [
            Finding(
                False,
                f"{db} is empty (0 bytes): uet never writes such a file",
                "find what truncated it; restore it from a backup if you have one",
            )
        ]
    with db.open("rb") as fh:
        header = fh.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        return [
            Finding(
                False,
                f"{db} is not a SQLite database",
                "restore it from a backup; nothing reads it until then",
            )
        ]
    try:
        with _read_only(db) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "meta" not in tables:
                return [
                    Finding(
                        False,
                        f"{db} is a SQLite database of another program",
                        "point uet at a project whose .uet/ it made",
                    )
                ]
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            missing = [t for t in _TABLES if t not in tables]
            check = [r[0] for r in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        return [
            Finding(
                False,
                f"{db} cannot be read: {exc}",
                f"keep a copy (cp {db} {db}.bak), then try `sqlite3 {db} .recover`",
            )
        ]
    found = []
    if version > SCHEMA_VERSION:
        found.append(
            Finding(
                False,
                f"{db} has schema {version}, newer than this uet-doit ({SCHEMA_VERSION})",
                "upgrade uet-doit",
            )
        )
    else:
        found.append(Finding(True, f"{db}: schema {version} (this uet-doit: {SCHEMA_VERSION})"))
    if missing:
        found.append(
            Finding(
                False,
                f"{db}: tables missing: {', '.join(missing)}",
                f"keep a copy (cp {db} {db}.bak), then try `sqlite3 {db} .recover`",
            )
        )
    if check != ["ok"]:
        found.append(
            Finding(
                False,
                f"{db}: integrity check: {'; '.join(check[:5])}",
                f"keep a copy (cp {db} {db}.bak), then try `sqlite3 {db} .recover`",
            )
        )
    elif not missing:
        found.append(Finding(True, f"{db}: integrity check ok"))
    return found
