"""Malformed local state and options: a `.uet/landing.json` that is JSON but no journal, a
`-n` too large for any counter, a `.doit.db` that is not doit's. Each is one clear error
(exit 2 or 3) found before the run is recorded, and the file is never written into."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from git_support import bundle, edit_step, make_repo

from uet_doit.state.store import RunStore

from support import Project, quick_first, shell_step


def nothing_recorded(project: Project) -> bool:
    store = RunStore(project.root)
    return not store.exists() or store.latest_run_id() is None


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("text", "where"),
    [("{}", "$.branch is missing"), ("[]", "$ is list"), ("null", "$ is null")],
)
def test_a_landing_journal_that_is_no_journal_is_a_clear_error(
    project: Project,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    where: str,
) -> None:
    repo = make_repo(project, tmp_path_factory.mktemp("outside"), monkeypatch)
    bundle(repo, edit_step("s", "notes.md", "some", "SOME"))
    journal = repo.write(".uet/landing.json", text)
    result = repo.run()
    assert result.code == 2, result.out + result.err
    shown = result.out + result.err
    assert f"{journal} is not a landing journal ({where}" in shown
    assert "rm " in shown and "Traceback" not in shown
    assert journal.read_text() == text
    assert nothing_recorded(repo)
    assert repo.read("notes.md") == "some notes\n"


def counting(project: Project) -> None:
    step = shell_step("s", "echo ran >> runs.log", create_files=["runs.log"])
    project.bundle({"bundle_id": "n", "workstreams": [{"ws_id": "W", "steps": [step]}]})


@pytest.mark.parametrize(
    "jobs", quick_first(["99999999999999999999999", "0", "-3", "1000001", "2.5"])
)
def test_a_job_count_out_of_range_is_refused_before_the_run_is_recorded(
    project: Project, jobs: str
) -> None:
    counting(project)
    argv = [sys.executable, "-m", "uet_doit", "run", "bundle.yaml", "-n", jobs]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "expected a whole number from 1 to 1000000" in result.stderr
    assert "Traceback" not in result.stderr
    assert nothing_recorded(project) and not (project.root / "runs.log").exists()


def test_a_job_count_in_range_still_runs(project: Project) -> None:
    counting(project)
    assert project.uet("run", "bundle.yaml", "-n", "64").code == 0
    assert project.lines("runs.log") == ["ran"]


def foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    conn.execute("INSERT INTO users VALUES (1, 'ada')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (foreign_sqlite, "a SQLite database of another program (tables: users)"),
        (lambda p: p.write_bytes(b"\x00garbage" * 512), "not a SQLite database"),
    ],
)
def test_a_doit_db_that_is_not_doits_is_a_clear_error_and_never_written(
    project: Project, make: object, said: str
) -> None:
    counting(project)
    db = project.root / ".doit.db"
    make(db)  # type: ignore[operator]
    before = digest(db)
    result = project.uet("run", "bundle.yaml")
    assert result.code == 2, result.out + result.err
    assert said in result.err and "nothing was written to it" in result.err
    assert digest(db) == before
    assert not (project.root / ".doit.db-wal").exists()
    assert nothing_recorded(project) and not (project.root / "runs.log").exists()
    for command in (("run", "bundle.yaml", "--dry-run"), ("why", "s", "--bundle", "bundle.yaml")):
        read = project.uet(*command)
        assert read.code == 2 and said in read.err, read.out + read.err
    assert digest(db) == before
