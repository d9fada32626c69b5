"""Isolated AI steps end to end: `uet run` in a real git repository with the fake tools.

Each attempt runs in its own worktree; its change lands as one commit with provenance
trailers on the branch the run started on; conflicts are retried on the new tip; writes
outside a step's scope never land; `uet revert` undoes one step; nothing of ours is left.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from git_support import (
    DOC,
    TRAILERS,
    assert_nothing_left,
    bundle,
    calls,
    edit_step,
    git,
    step,
    step_commits,
)

from support import Project

# -- landing --------------------------------------------------------------------------------


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_parallel_steps_editing_different_parts_of_one_file_both_land(repo: Project) -> None:
    bundle(
        repo,
        edit_step("top", "doc.md", "line1\n", "LINE ONE\n"),
        edit_step("bottom", "doc.md", "line12\n", "LINE TWELVE\n"),
    )
    result = repo.run("-n", "2")
    assert result.code == 0, result.out + result.err
    assert repo.read("doc.md") == DOC.replace("line1\n", "LINE ONE\n").replace(
        "line12\n", "LINE TWELVE\n"
    )
    commits = step_commits(repo)
    assert sorted(c["Uet-Step"] for c in commits) == ["bottom", "top"]
    run_id = repo.status()["run_id"]
    for commit in commits:
        assert all(key in commit for key in TRAILERS), commit
        assert (commit["Uet-Run"], commit["Uet-Workstream"]) == (run_id, "W")
        assert (commit["Uet-Tool"], commit["Uet-Attempt"], commit["Uet-Cost-USD"]) == (
            "aider",
            "1",
            "0.008100",
        )
        assert commit["subject"] == commit["Uet-Step"]
    # every tool ran in a worktree of its own, never in the project
    cwds = {c["cwd"] for c in calls(repo)}
    assert len(cwds) == 2 and str(repo.root.resolve()) not in cwds
    assert git(repo, "status", "--porcelain") == ""  # landed tree = working tree; .uet ignored
    assert_nothing_left(repo)


@pytest.mark.slow
def test_same_line_conflict_is_retried_on_the_new_tip_and_lands(repo: Project) -> None:
    slow = {"FAKE_AIDER_MODE": "slow", "FAKE_SLEEP": "1.5"}
    bundle(
        repo,
        edit_step("first", "doc.md", "line3", "line3 (first)"),
        edit_step("second", "doc.md", "line3", "line3 (second)", env=slow),
    )
    result = repo.run("-n", "2")
    assert result.code == 0, result.out + result.err
    assert "line3 (second) (first)" in repo.read("doc.md")
    second = step(repo, "second")
    assert second["attempts"] == 2
    assert second["attempt_classes"] == ["merge_conflict", None]
    assert second["cost_usd"] == pytest.approx(2 * 0.0081)  # the conflicted attempt counts
    assert [c["Uet-Step"] for c in step_commits(repo)] == ["second", "first"]
    assert step_commits(repo)[0]["Uet-Attempt"] == "2"
    assert_nothing_left(repo)


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_a_tools_own_commits_are_squashed_into_one_step_commit(repo: Project) -> None:
    bundle(repo, edit_step("own", "a.md", "alpha", "ALPHA", env={"FAKE_AIDER_MODE": "commit"}))
    assert repo.run().code == 0
    subjects = git(repo, "log", "--format=%s", "main").split("\n")
    assert subjects[:3] == ["own", "bundle", "start"]
    assert "aider: edits" not in subjects
    assert repo.read("a.md") == "ALPHA\n"
    assert_nothing_left(repo)


def test_unrelated_uncommitted_edits_of_the_user_are_kept(repo: Project) -> None:
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA"))
    repo.write("notes.md", "my own unsaved notes\n")
    repo.write("scratch.txt", "untracked\n")
    assert repo.run().code == 0
    assert repo.read("a.md") == "ALPHA\n"
    assert repo.read("notes.md") == "my own unsaved notes\n"
    assert repo.read("scratch.txt") == "untracked\n"
    assert git(repo, "show", "HEAD:notes.md") == "some notes\n"


def test_a_user_edit_in_the_steps_scope_stops_it_and_is_not_overwritten(repo: Project) -> None:
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA"))
    repo.write("a.md", "alpha, edited by me\n")
    result = repo.run()
    assert result.code == 1
    failed = step(repo, "s")
    assert failed["failure_class"] == "uncommitted_edit"
    assert failed["attempts"] == 1  # not retried: the same edit would stop it again
    assert "a.md" in failed["last_error"] and "stash" in failed["last_error"]
    assert repo.read("a.md") == "alpha, edited by me\n"
    assert step_commits(repo) == []


# -- scope ----------------------------------------------------------------------------------


def test_a_write_outside_the_scope_fails_and_lands_nowhere(repo: Project) -> None:
    bundle(
        repo,
        edit_step("s", "a.md", "alpha", "ALPHA", env={"FAKE_WRITE_ALSO": "secrets/stray.txt"}),
    )
    result = repo.run()
    assert result.code == 1
    failed = step(repo, "s")
    assert failed["failure_class"] == "scope_violation"
    assert failed["attempts"] == 1
    assert "secrets/stray.txt" in failed["last_error"]
    assert not (repo.root / "secrets").exists()
    assert repo.read("a.md") == "alpha\n"
    assert git(repo, "log", "--all", "--format=%H", "--", "secrets/stray.txt") == ""
    # the attempt's worktree is kept for inspection, listed, then cleaned
    listed = repo.uet("workspaces")
    assert "scope_violation" in listed.out and " s " in f" {listed.out}"
    kept = json.loads(repo.uet("workspaces", "--json").out)
    assert (Path(kept[0]["path"]) / "secrets" / "stray.txt").exists()
    assert repo.uet("clean").code == 0
    assert_nothing_left(repo)
    assert json.loads(repo.uet("workspaces", "--json").out) == []


def test_scope_globs_allow_more_paths(repo: Project) -> None:
    bundle(
        repo,
        edit_step(
            "s",
            "a.md",
            "alpha",
            "ALPHA",
            env={"FAKE_WRITE_ALSO": "gen/deep/x.txt"},
            scope=["gen/**"],
        ),
    )
    assert repo.run().code == 0
    assert (repo.root / "gen" / "deep" / "x.txt").exists()
    assert git(repo, "show", "--format=", "--name-only", "HEAD").split() == [
        "a.md",
        "gen/deep/x.txt",
    ]


# -- provenance and revert ------------------------------------------------------------------


@pytest.mark.slow
def test_log_show_and_revert_of_one_step(repo: Project) -> None:
    bundle(repo, edit_step("sa", "a.md", "alpha", "ALPHA"), edit_step("sb", "b.md", "beta", "BETA"))
    assert repo.run("-n", "2").code == 0
    log = json.loads(repo.uet("log", "--json").out)
    assert sorted(entry["step_id"] for entry in log) == ["sa", "sb"]
    shown = repo.uet("show", "sa")
    assert shown.code == 0 and "-alpha" in shown.out and "+ALPHA" in shown.out
    assert "aider" in shown.out

    reverted = repo.uet("revert", "sa")
    assert reverted.code == 0, reverted.err
    assert repo.read("a.md") == "alpha\n"  # exactly the earlier content
    assert repo.read("b.md") == "BETA\n"
    assert git(repo, "status", "--porcelain") == ""

    before = len(calls(repo))
    assert repo.run().code == 0
    ran = [c["prompt"] for c in calls(repo)[before:]]
    assert len(ran) == 1 and "a.md" in ran[0]  # only the reverted step ran again
    assert {s["step_id"]: s["status"] for s in repo.status()["steps"]} == {
        "sa": "succeeded",
        "sb": "up_to_date",
    }
    assert repo.read("a.md") == "ALPHA\n"


def test_revert_of_a_step_without_commit_says_which_have(repo: Project) -> None:
    bundle(repo, edit_step("sa", "a.md", "alpha", "ALPHA"))
    assert repo.run().code == 0
    result = repo.uet("revert", "nope")
    assert result.code == 3
    assert "no landed commit of step 'nope'" in result.err and "sa" in result.err


# -- isolation settings ---------------------------------------------------------------------


def test_isolation_none_runs_in_the_project_as_before(repo: Project) -> None:
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA"), isolation="none")
    assert repo.run().code == 0
    [call] = calls(repo)
    assert call["cwd"] == str(repo.root.resolve())
    assert repo.read("a.md") == "ALPHA\n"
    assert step_commits(repo) == []
    assert "a.md" in git(repo, "status", "--porcelain")


def test_shell_steps_run_in_place_by_default(repo: Project) -> None:
    bundle(repo, {"step_id": "sh", "command": "echo hi > out.txt", "create_files": ["out.txt"]})
    assert repo.run().code == 0
    assert repo.read("out.txt") == "hi\n"
    assert step_commits(repo) == []


def test_worktree_outside_git_is_refused_by_validate(project: Project) -> None:
    project.bundle(
        {
            "bundle_id": "iso",
            "workstreams": [
                {"ws_id": "W", "isolation": "worktree", "steps": [edit_step("s", "a.md", "a", "b")]}
            ],
        }
    )
    result = project.uet("validate", "bundle.yaml")
    assert result.code == 3
    assert "workstreams[0].isolation" in result.err
    assert "git init" in result.err and "isolation: none" in result.err


def test_workspace_copy_and_setup_prepare_each_worktree(repo: Project) -> None:
    repo.write(".env", "TOKEN=local\n")  # untracked, not ignored
    setup = "cat .env > setup-saw.txt"
    check = {"FAKE_WRITE_ALSO": "copied.txt"}
    bundle(
        repo,
        edit_step("s", "a.md", "alpha", "ALPHA", env=check, scope=["copied.txt"]),
        workspace={"copy": [".env"], "setup": setup},
    )
    assert repo.run().code == 0
    # what copy and setup made is the tool's starting point, not part of its commit
    assert git(repo, "show", "--format=", "--name-only", "HEAD").split() == ["a.md", "copied.txt"]
    assert not (repo.root / "setup-saw.txt").exists()


def test_a_failing_setup_is_workspace_setup_and_the_tool_never_runs(repo: Project) -> None:
    bundle(
        repo,
        edit_step("s", "a.md", "alpha", "ALPHA", workspace={"setup": "echo broken >&2; exit 3"}),
    )
    assert repo.run().code == 1
    failed = step(repo, "s")
    assert failed["failure_class"] == "workspace_setup"
    assert "exit code 3" in failed["last_error"] and "broken" in failed["last_error"]
    assert calls(repo) == []


# -- faults at start ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("break_it", "said"),
    [
        (lambda p: (p.write("a.md", "staged\n"), git(p, "add", "a.md")), "staged changes"),
        (lambda p: git(p, "checkout", "-q", "--detach"), "HEAD is detached"),
        (lambda p: (p.root / ".git" / "rebase-merge").mkdir(), "a rebase is in progress"),
        (lambda p: (p.root / ".git" / "index.lock").write_text(""), "index is locked"),
    ],
    ids=["staged", "detached", "rebase", "index-lock"],
)
def test_unsafe_repository_states_stop_the_run_before_any_step(
    repo: Project, break_it: Any, said: str
) -> None:
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA"))
    break_it(repo)
    result = repo.run()
    assert result.code == 3
    assert said in result.err and "no step was started" in result.err
    assert "Traceback" not in result.err
    assert calls(repo) == []


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_into_lands_on_another_branch_without_touching_the_working_tree(repo: Project) -> None:
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA"))
    git(repo, "branch", "ai")
    assert repo.run("--into", "ai").code == 0
    assert repo.read("a.md") == "alpha\n"
    assert git(repo, "show", "ai:a.md") == "ALPHA\n"
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "bundle"


@pytest.mark.slow
def test_steps_editing_one_file_do_not_make_each_other_out_of_date(repo: Project) -> None:
    """Up-to-date tracking of a shared input follows each step's own change: another
    step's landing or revert leaves it done, a user's edit does not."""
    slow = {"FAKE_AIDER_MODE": "slow", "FAKE_SLEEP": "0.5"}
    bundle(
        repo,
        edit_step("top", "doc.md", "line1\n", "LINE ONE\n", env=slow),
        edit_step("bottom", "doc.md", "line12\n", "LINE TWELVE\n"),
    )
    assert repo.run("-n", "2").code == 0
    again = repo.run("-n", "2")
    assert "0 ran, 2 up to date" in again.out

    assert repo.uet("revert", "bottom").code == 0
    assert repo.read("doc.md") == DOC.replace("line1\n", "LINE ONE\n")
    before = len(calls(repo))
    assert "1 ran, 1 up to date" in repo.run("-n", "2").out
    [redone] = calls(repo)[before:]
    assert redone["prompt"].startswith("replace line12")

    repo.write("doc.md", repo.read("doc.md") + "my own line\n")  # a user's edit
    assert "2 ran" in repo.run("-n", "2").out


@pytest.mark.slow
def test_conflicts_serialize_never_runs_overlapping_steps_together(repo: Project) -> None:
    slow = {"FAKE_AIDER_MODE": "slow", "FAKE_SLEEP": "0.5"}
    bundle(
        repo,
        edit_step("first", "doc.md", "line3", "line3 (first)", env=slow),
        edit_step("second", "doc.md", "line3", "line3 (second)", env=slow),
        edit_step("apart", "a.md", "alpha", "ALPHA", env=slow),
        conflicts="serialize",
    )
    assert repo.run("-n", "3").code == 0
    spans = {Path(c["cwd"]).name.split(".")[0]: (c["start"], c["end"]) for c in calls(repo)}
    (s1, e1), (s2, e2), (s3, _) = spans["first"], spans["second"], spans["apart"]
    assert s2 >= e1 or s1 >= e2  # the two steps on doc.md one after the other
    assert s3 < max(e1, e2)  # the step on another file ran alongside
    assert all(step(repo, s)["attempts"] == 1 for s in ("first", "second", "apart"))
    assert "line3 (second) (first)" in repo.read("doc.md") or "line3 (first) (second)" in (
        repo.read("doc.md")
    )


def test_into_a_branch_checked_out_in_another_worktree_is_refused(
    repo: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA"))
    other = tmp_path_factory.mktemp("other") / "wt"
    git(repo, "worktree", "add", "-q", "-b", "elsewhere", str(other))
    result = repo.run("--into", "elsewhere")
    assert result.code == 3
    assert "checked out in" in result.err and str(other) in result.err
    assert calls(repo) == []


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_a_later_attempt_starts_clean_at_the_new_tip(repo: Project) -> None:
    """Worktrees of landed attempts are taken over by later ones: nothing of the previous
    step (not even ignored files) is left, and the landed change is there."""
    repo.write(".gitignore", "*.log\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore logs")
    seen = repo.root.parent / "seen"  # outside the project: the sandbox lets tools write there
    mark = f"Path({str(seen)!r} + '.first').write_text(str(os.stat('.').st_ino))"
    check = f"test ! -e debug.log && grep -q ALPHA a.md && stat -c %i . > {seen}.second"
    bundle(
        repo,
        edit_step(
            "first",
            "a.md",
            "alpha",
            "ALPHA",
            env={"FAKE_WRITE_ALSO": "debug.log", "FAKE_RUN_ALSO": mark},
        ),
        {
            "step_id": "second",
            "command": check,
            "isolation": "worktree",
            "depends_on": ["first"],
            "files": ["a.md"],
        },
    )
    result = repo.run()
    assert result.code == 0, result.out + result.err
    [first_call] = calls(repo)
    assert Path(first_call["cwd"]).name == "first.1"
    # the second step ran in the first one's worktree folder, taken over (renamed), not new
    first_inode = Path(f"{seen}.first").read_text().strip()
    assert Path(f"{seen}.second").read_text().strip() == first_inode
    assert not (repo.root / "debug.log").exists()
    assert_nothing_left(repo)


@pytest.mark.slow
def test_worktrees_in_a_configured_folder_leave_nothing_behind(repo: Project) -> None:
    bundle(
        repo,
        edit_step("sa", "a.md", "alpha", "ALPHA"),
        edit_step("sb", "b.md", "beta", "BETA", depends_on=["sa"]),
        workspace={"dir": "../elsewhere-wt"},
    )
    assert repo.run().code == 0
    cwds = [Path(c["cwd"]) for c in calls(repo)]
    assert all(p.resolve().is_relative_to((repo.root / "../elsewhere-wt").resolve()) for p in cwds)
    assert_nothing_left(repo)
    assert not [p for p in (repo.root / "../elsewhere-wt").rglob("*") if p.is_file()]


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_inputs_the_tip_does_not_hold_are_copied_into_the_worktree(repo: Project) -> None:
    """An input made by a step that runs in place (git-ignored) or not committed yet is
    there for the tool; reading it is not a change of the step's."""
    repo.write(".gitignore", "build/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore build")
    repo.write("draft.md", "an uncommitted draft\n")
    outline = {
        "step_id": "outline",
        "command": "mkdir -p build && echo '# outline' > build/outline.md",
        "create_files": ["build/outline.md"],
    }
    summary = {
        "step_id": "summary",
        "tool_profile_id": "aider",
        "context": {
            "files": ["build/outline.md", "draft.md"],
            "create_files": ["out/summary.md"],
            "instruction": "Summarise",
        },
        "validation": {"test_command": "test -s build/outline.md && test -s draft.md"},
    }
    bundle(repo, outline, summary)
    result = repo.run()
    assert result.code == 0, result.out + result.err
    assert git(repo, "show", "--format=", "--name-only", "HEAD").split() == ["out/summary.md"]
    assert git(repo, "status", "--porcelain").split() == ["??", "draft.md"]


def test_a_run_stopped_by_the_repository_state_leaves_no_run_behind(repo: Project) -> None:
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA"))
    git(repo, "checkout", "-q", "--detach")
    assert repo.run().code == 3
    assert "iso-" not in repo.uet("runs").out  # no run recorded, none left "running"


# -- git failures, told as uet's -------------------------------------------------------------


@pytest.mark.slow
def test_a_git_lock_taken_while_a_step_ran_is_said_as_such_and_the_next_run_lands(
    repo: Project,
) -> None:
    """An editor's git holding .git/index.lock when the step lands: the step fails saying
    what uet was doing, the command, git's first line and what to do, not that the user
    edited a.md (and not git's paragraph about other git processes)."""
    lock = repo.root / ".git" / "index.lock"
    take_lock = f"open({str(lock)!r}, 'w').close()"
    sa = edit_step("sa", "a.md", "alpha", "ALPHA", env={"FAKE_RUN_ALSO": take_lock})
    bundle(repo, {**sa, "sandbox": "none"}, resilience={"max_retries": 0})
    result = repo.run()
    assert result.code == 1
    failed = step(repo, "sa")
    assert failed["failure_class"] != "uncommitted_edit"
    error = failed["last_error"]
    assert "could not land the step on main (updating its files in " in error
    assert "`git read-tree -m -u " in error
    assert "index.lock': File exists." in error
    assert f"if none is running, a crashed one left it: remove {lock}" in error
    assert "Another git process" not in result.out + result.err
    assert repo.read("a.md") == "alpha\n"

    lock.unlink()  # what the message says to do
    bundle(repo, edit_step("sa", "a.md", "alpha", "ALPHA"))
    assert repo.run().code == 0
    assert repo.read("a.md") == "ALPHA\n"


@pytest.mark.slow
def test_revert_with_the_index_locked_is_one_screen_with_the_fix(repo: Project) -> None:
    bundle(repo, edit_step("sa", "a.md", "alpha", "ALPHA"))
    assert repo.run().code == 0
    lock = repo.root / ".git" / "index.lock"
    lock.write_text("")
    result = repo.uet("revert", "sa")
    assert result.code == 3
    lines = result.err.splitlines()
    assert lines[0].startswith("ERROR: could not revert step sa (")
    assert lines[1].startswith("  command: git revert --no-commit ")
    assert lines[2].startswith("  git said: fatal: Unable to create '") and "index.lock" in lines[2]
    assert lines[3] == (
        "TIP: another git command holds the repository's lock (an editor, a git in another "
        f"terminal): wait for it; if none is running, a crashed one left it: remove {lock}"
    )
    assert len(lines) == 4 and "Traceback" not in result.err
    lock.unlink()
    assert repo.uet("revert", "sa").code == 0
    assert repo.read("a.md") == "alpha\n"


def test_a_git_command_is_shown_short() -> None:
    from uet_doit.run.workspaces.git import SAFE_CONFIG, shown_command

    argv = ["git", "-C", "/p", "--git-dir=/g", "--work-tree=/p", *SAFE_CONFIG, "read-tree"]
    argv += ["-m", "-u", "a" * 40, "b" * 40]
    assert shown_command(argv) == "git read-tree -m -u aaaaaaaaaaaa bbbbbbbbbbbb"
    many = shown_command(["git", "add", "--", *[f"dir {i}/x" for i in range(20)]])
    assert many.startswith("git add -- 'dir 0/x' 'dir 1/x'") and many.endswith("... (14 more)")
