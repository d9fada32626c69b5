"""Isolated runs killed at the worst moments: a landing cut short is finished by the next
run, and kill -9 at random instants of a worktree run still lands every step once."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from git_support import bundle, edit_step, git

from uet_doit.run.workspaces.git import Git
from uet_doit.run.workspaces.landing import recover_landing, write_journal
from uet_doit.state.records import EventKind
from uet_doit.state.store import RunStore

from support import Project, load_benchmark

#: git repositories and runs killed mid-landing: `pytest -m "not slow"` leaves this module out
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def soak() -> ModuleType:
    return load_benchmark("worktree_soak")


def _pending_landing(project: Project) -> tuple[str, str]:
    """main's tip, and a commit on it changing a.md and deleting b.md (not landed yet)."""
    old = git(project, "rev-parse", "main").strip()
    tree = _tree_with(project, old, {"a.md": "ALPHA\n"}, delete=["b.md"])
    new = git(project, "commit-tree", tree, "-p", old, "-m", "step\n\nUet-Step: s").strip()
    return old, new


def _tree_with(project: Project, base: str, files: dict[str, str], delete: list[str]) -> str:
    import os
    import subprocess

    env = {**os.environ, "GIT_INDEX_FILE": str(project.root / ".git" / "tmp-index")}
    run_git = ["git", "-C", str(project.root)]
    subprocess.run([*run_git, "read-tree", base], env=env, check=True)
    for path, text in files.items():
        sha = subprocess.run(
            [*run_git, "hash-object", "-w", "--stdin"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        subprocess.run(
            [*run_git, "update-index", "--add", "--cacheinfo", f"100644,{sha},{path}"],
            env=env,
            check=True,
        )
    for path in delete:
        subprocess.run([*run_git, "update-index", "--force-remove", path], env=env, check=True)
    tree = subprocess.run(
        [*run_git, "write-tree"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    Path(env["GIT_INDEX_FILE"]).unlink()
    return tree


@pytest.mark.parametrize("cut", ["before-tree", "inside-read-tree", "after-ref"])
def test_a_landing_cut_by_kill_9_is_finished_by_the_next_run(
    repo: Project,
    cut: str,
) -> None:
    old, new = _pending_landing(repo)
    state = repo.root / ".uet"
    state.mkdir()
    repo.write("notes.md", "an unrelated edit of mine\n")
    write_journal(state / "landing.json", "main", old, new, True)
    if cut == "inside-read-tree":  # a.md written, b.md not yet removed, the index locked
        repo.write("a.md", "ALPHA\n")
        (repo.root / ".git" / "index.lock").write_text("")
    if cut == "after-ref":
        git(repo, "read-tree", "-m", "-u", old, new)
        git(repo, "update-ref", "refs/heads/main", new, old)

    note = recover_landing(Git(repo.root), state)

    assert note is not None and "finished the landing" in note
    assert git(repo, "rev-parse", "main").strip() == new
    assert repo.read("a.md") == "ALPHA\n"
    assert not (repo.root / "b.md").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=no").split() == ["M", "notes.md"]
    assert repo.read("notes.md") == "an unrelated edit of mine\n"
    assert not (repo.root / ".git" / "index.lock").exists()
    assert not (state / "landing.json").exists()


def test_uet_run_finishes_a_cut_landing_before_any_step(repo: Project) -> None:
    bundle(repo, edit_step("s", "notes.md", "some", "SOME"))
    old, new = _pending_landing(repo)
    RunStore(repo.root).event(None, EventKind.LANDING, "s", commit=new)  # as land() records
    write_journal(repo.root / ".uet" / "landing.json", "main", old, new, True)
    result = repo.run()
    assert result.code == 0, result.out + result.err
    assert "finished the landing" in result.out
    assert git(repo, "log", "--format=%s", "-3", "main").split("\n")[:3] == ["s", "step", "bundle"]


@pytest.mark.parametrize("kill_after", [0.5, 1.3])
def test_kill_9_at_an_instant_of_a_worktree_run_then_resume(
    soak: ModuleType, tmp_path: Path, kill_after: float
) -> None:
    trial = soak.trial(tmp_path, steps=6, jobs=3, kill_after=kill_after)
    assert trial.problems(6) == []
    log = json.loads(soak.calls_log(tmp_path).read_text().splitlines()[0])
    assert "/.uet/worktrees/" in log["cwd"]


def test_a_landed_success_a_killed_run_recorded_is_not_redone(repo: Project) -> None:
    """Killed after recording a landed step but before doit saved it, while later landings
    changed the step's file since: its commit on the branch says it is done."""
    import sqlite3

    from uet_doit.run.workspaces.provenance import forget_step

    bundle(
        repo,
        edit_step("first", "doc.md", "line1\n", "LINE ONE\n"),
        edit_step("then", "doc.md", "line12\n", "LINE TWELVE\n", depends_on=["first"]),
    )
    assert repo.run().code == 0
    run_id = repo.status()["run_id"]
    conn = sqlite3.connect(repo.root / ".uet" / "state.db")
    with conn:
        conn.execute("UPDATE runs SET status='interrupted' WHERE run_id=?", (run_id,))
    conn.close()
    forget_step(repo.root, run_id, "first")  # as if doit never saved it
    calls_log = Path(__import__("os").environ["FAKE_TOOL_LOG"])
    before = len(calls_log.read_text().splitlines())

    again = repo.run()
    assert again.code == 0, again.out + again.err
    assert len(calls_log.read_text().splitlines()) == before  # no tool ran
    first = next(s for s in repo.status()["steps"] if s["step_id"] == "first")
    assert first["status"] == "succeeded" and first["attempts"] == 0
    assert git(repo, "log", "--format=%s", "main").split("\n")[:2] == ["then", "first"]
    conn = sqlite3.connect(repo.root / ".uet" / "state.db")
    [data] = conn.execute("SELECT data FROM events WHERE kind='recovered'").fetchone()
    conn.close()
    assert json.loads(data)["commit"] == git(repo, "rev-parse", "main~1").strip()


def test_a_tool_that_finishes_after_its_runner_was_killed_is_landed_not_redone(
    repo: Project,
) -> None:
    import os
    import signal

    from uet_doit.state.store import RunStore

    from support import start_run, wait_for

    slow = {"FAKE_AIDER_MODE": "slow", "FAKE_SLEEP": "3"}
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA", env=slow))
    first = start_run(repo.root, until="start")
    store = RunStore(repo.root)

    def tool_pids() -> list[int]:
        run_id = store.latest_run_id()
        return [a.pid for a in store.attempts(run_id) if a.pid] if run_id else []

    # the tool is running in its worktree, its pid recorded (it answers after 3 s)
    assert wait_for(tool_pids, bool, 30), "the tool never started"
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.stdout is not None
    first.stdout.close()
    run_id = repo.status()["run_id"]
    assert repo.read("a.md") == "alpha\n"  # nothing landed yet

    again = repo.run()
    assert again.code == 0, again.out + again.err
    log = Path(os.environ["FAKE_TOOL_LOG"]).read_text().splitlines()
    assert len(log) == 1  # the killed run's tool finished and was adopted
    assert repo.read("a.md") == "ALPHA\n"
    trailers = git(repo, "log", "-1", "--format=%(trailers:key=Uet-Run,valueonly)", "main")
    assert trailers.strip() == run_id
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


KILL_GIT = """#!/bin/sh
# git, except that it kill -9s the uet runner while it moves refs/heads/main (once): inside
# a real landing. (A hook cannot do it: uet runs git with hooks off.)
case "$*" in *"update-ref refs/heads/main "*) ;; *) exec {real} "$@" ;; esac
[ -e "{marker}" ] && exec {real} "$@"
touch "{marker}"
pid=$(sed -n 's/.*(pid \\([0-9]*\\)).*/\\1/p' "{root}/.uet/run.lock")
{after}
"""


@pytest.mark.parametrize(
    "state",
    ["prepared", "committed"],
    ids=["before-the-ref-moves", "after-the-ref-moved"],
)
def test_kill_9_inside_a_real_landing_then_resume(
    repo: Project,
    state: str,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os
    import shutil

    from support import start_run

    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA"))
    real = shutil.which("git")
    killing = 'kill -9 "$pid"; exit 1'
    after = killing if state == "prepared" else f'{real} "$@"; {killing.replace("1", "0")}'
    outside = tmp_path_factory.mktemp("killing")
    wrapper = outside / "bin"
    wrapper.mkdir()
    (wrapper / "git").write_text(
        KILL_GIT.format(real=real, marker=outside / "killed", root=repo.root, after=after)
    )
    (wrapper / "git").chmod(0o755)
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", f"{wrapper}{os.pathsep}{path}")
    first = start_run(repo.root)
    first.communicate(timeout=60)
    assert first.returncode == -9  # killed inside the landing
    monkeypatch.setenv("PATH", path)

    again = repo.run()
    assert again.code == 0, again.out + again.err
    steps = git(repo, "log", "--format=%(trailers:key=Uet-Step,valueonly)", "main").split()
    assert steps == ["s"]  # landed exactly once
    assert repo.read("a.md") == "ALPHA\n"
    assert git(repo, "status", "--porcelain") == ""
    assert len(Path(__import__("os").environ["FAKE_TOOL_LOG"]).read_text().splitlines()) == 1
    assert not (repo.root / ".uet" / "landing.json").exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
