"""Isolation that holds, through `uet run` with fake tools in a real git repository: the
tool's own files never land, edited inputs and deleted outputs behave, and a hostile tool
(one that moves the branch, plants hooks or config, forges the landing journal, makes an
outward symlink, or writes where its sandbox forbids) gets nothing landed or run."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from git_support import bundle, calls, edit_step, git, step, step_commits

from uet_doit.run.workspaces.landing import write_journal
from uet_doit.state.records import EventKind
from uet_doit.state.store import RunStore
from uet_doit.tools.sandbox import bwrap_problem, landlock_problem

from support import Project

#: hostile tools in git worktrees, each a whole run: `pytest -m "not slow"` leaves this module out
pytestmark = pytest.mark.slow

NONE = {"sandbox": "none"}
#: the project root, seen from a tool inside its worktree (.uet/worktrees/<run>/<step>.<n>)
ROOT = "Path.cwd().parents[3]"


def create_step(step_id: str, out: str, **extra: object) -> dict[str, object]:
    """An aider step that reads notes.md and writes `out`."""
    return {
        "step_id": step_id,
        "tool_profile_id": "aider",
        "context": {"files": ["notes.md"], "create_files": [out], "instruction": "summarise"},
        **extra,
    }


def changed_files(project: Project, sha: str) -> list[str]:
    return git(project, "show", "--format=", "--name-only", sha).split()


def fails_with(project: Project, step_id: str, cls: str) -> str:
    result = project.run()
    assert result.code == 1, result.out + result.err
    row = step(project, step_id)
    assert row["status"] == "failed" and row["failure_class"] == cls, row
    return result.out


# -- the tool's own files ------------------------------------------------------------------


@pytest.mark.parametrize("git_mode", [False, True], ids=["no-git", "git"])
def test_aiders_own_files_never_land_and_gitignore_is_untouched(
    repo: Project, git_mode: bool
) -> None:
    options = {"tool_options": {"git": True}} if git_mode else {}
    env = {"FAKE_AIDER_MODE": "commit"} if git_mode else {}
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA", env=env, **options))
    result = repo.run()
    assert result.code == 0, result.out + result.err
    [commit] = step_commits(repo)
    assert changed_files(repo, commit["sha"]) == ["a.md"]
    assert not (repo.root / ".gitignore").exists()
    assert not list(repo.root.glob(".aider*"))
    argv = calls(repo)[0]["argv"]
    assert ("--no-gitignore" in argv) == git_mode
    history = Path(argv[argv.index("--chat-history-file") + 1])
    assert "replace alpha" in history.read_text()  # aider kept its history, elsewhere


# -- inputs the user edited, outputs the user deleted -----------------------------------------


def test_an_edited_input_is_the_starting_point_and_only_the_output_lands(repo: Project) -> None:
    bundle(repo, create_step("s", "out.md"))
    repo.write("notes.md", "my notes, edited and not committed\n")
    result = repo.run()
    assert result.code == 0, result.out + result.err
    [commit] = step_commits(repo)
    assert changed_files(repo, commit["sha"]) == ["out.md"]
    assert repo.read("notes.md") == "my notes, edited and not committed\n"
    assert git(repo, "status", "--porcelain").split() == ["M", "notes.md"]
    seen = hashlib.sha256(b"my notes, edited and not committed\n").hexdigest()
    inputs = hashlib.sha256(b"notes.md\0" + seen.encode()).hexdigest()
    assert commit["Uet-Inputs-SHA256"] == inputs


def test_a_deleted_output_is_restored_from_the_branch_without_a_tool_call(repo: Project) -> None:
    bundle(repo, create_step("s", "out.md"))
    assert repo.run().code == 0
    made = repo.read("out.md")
    (repo.root / "out.md").unlink()
    result = repo.run()
    assert result.code == 0, result.out + result.err
    assert repo.read("out.md") == made
    assert len(calls(repo)) == 1  # no second call: nothing it was made from changed
    [restored] = RunStore(repo.root).events_of(EventKind.RESTORED)
    assert restored.step_id == "s" and restored.data["paths"] == ["out.md"]
    assert git(repo, "status", "--porcelain") == ""
    assert repo.run().code == 0 and len(calls(repo)) == 1  # and no call after that


def test_a_rerun_that_makes_the_same_bytes_still_puts_the_output_back(repo: Project) -> None:
    made = {
        "step_id": "s",
        "command": "echo fixed > out.md",
        "isolation": "worktree",
        "files": ["notes.md"],
        "create_files": ["out.md"],
    }
    bundle(repo, made)
    assert repo.run().code == 0 and repo.read("out.md") == "fixed\n"
    repo.write("notes.md", "new notes\n")  # the step must really run again
    git(repo, "commit", "-q", "-am", "new notes")
    (repo.root / "out.md").unlink()
    result = repo.run()
    assert result.code == 0, result.out + result.err
    assert repo.read("out.md") == "fixed\n"  # the same bytes as the tip: nothing to commit
    assert len(step_commits(repo)) == 1


# -- a hostile tool, without a sandbox --------------------------------------------------------


def test_a_tool_that_moves_the_landing_branch_is_tampered_and_nothing_lands(
    repo: Project,
) -> None:
    attack = (
        f"root = {ROOT}\n"
        "g = ['git', '-C', str(root), '-c', 'user.name=x', '-c', 'user.email=x@x']\n"
        "blob = subprocess.run([*g, 'hash-object', '-w', '--stdin'], input='evil', "
        "capture_output=True, text=True, check=True).stdout.strip()\n"
        "tree = subprocess.run([*g, 'mktree'], input=f'100755 blob {blob}\\tevil.sh\\n', "
        "capture_output=True, text=True, check=True).stdout.strip()\n"
        "sha = subprocess.run([*g, 'commit-tree', tree, '-p', 'main', '-m', 'evil'], "
        "capture_output=True, text=True, check=True).stdout.strip()\n"
        "subprocess.run([*g, 'update-ref', 'refs/heads/main', sha], check=True)\n"
    )
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA", env={"FAKE_RUN_ALSO": attack}, **NONE))
    before = git(repo, "rev-parse", "main").strip()
    out = fails_with(repo, "s", "tampered")
    assert "was moved to" in out and "evil" in out
    assert step_commits(repo) == []
    assert git(repo, "rev-parse", "main^").strip() == before  # only the tool's commit on it
    assert not (repo.root / "evil.sh").exists()


PLANTS = {
    "hook": "hooks/post-checkout",
    "reference-transaction": "hooks/reference-transaction",
    "fsmonitor": "config",
    "hooksPath": "config",
    "filter": "info/attributes",
}


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_planted_git_hooks_and_config_never_run_and_are_put_back(
    repo: Project, plant: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    marker = tmp_path_factory.mktemp("marker") / "ran"
    script = f"#!/bin/sh\ntouch {marker}\n"
    git_dir = f"({ROOT} / '.git')"
    code = {
        "hook": f"p = {git_dir} / 'hooks' / 'post-checkout'\np.write_text({script!r})\n"
        "p.chmod(0o755)\n",
        "reference-transaction": f"p = {git_dir} / 'hooks' / 'reference-transaction'\n"
        f"p.write_text({script!r})\np.chmod(0o755)\n",
        "fsmonitor": f"s = {git_dir} / 'mon.sh'\ns.write_text({script!r})\ns.chmod(0o755)\n"
        f"c = {git_dir} / 'config'\nc.write_text(c.read_text() + '[core]\\n\\tfsmonitor = ' "
        "+ str(s) + '\\n')\n",
        "hooksPath": f"h = {git_dir} / 'evil-hooks'\nh.mkdir()\n"
        f"(h / 'post-index-change').write_text({script!r})\n"
        "(h / 'post-index-change').chmod(0o755)\n"
        f"c = {git_dir} / 'config'\nc.write_text(c.read_text() + '[core]\\n\\thooksPath = ' "
        "+ str(h) + '\\n')\n",
        "filter": f"a = {git_dir} / 'info' / 'attributes'\na.parent.mkdir(exist_ok=True)\n"
        "a.write_text('*.md filter=evil\\n')\n"
        f"c = {git_dir} / 'config'\nc.write_text(c.read_text() + '[filter \"evil\"]\\n\\t"
        f"clean = touch {marker} && cat\\n')\n",
    }[plant]
    config_before = (repo.root / ".git" / "config").read_bytes()
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA", env={"FAKE_RUN_ALSO": code}, **NONE))
    out = fails_with(repo, "s", "tampered")
    assert PLANTS[plant] in out
    assert not marker.exists()  # nothing the tool planted ever ran
    assert (repo.root / ".git" / "config").read_bytes() == config_before
    assert not (repo.root / ".git" / "hooks" / "post-checkout").exists()
    assert not (repo.root / ".git" / "hooks" / "reference-transaction").exists()
    assert step_commits(repo) == []
    # the same step, the tool now behaving, lands: uet put everything back
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA", **NONE))
    assert repo.run().code == 0
    assert repo.read("a.md") == "ALPHA\n" and not marker.exists()


def test_a_hooks_folder_turned_into_a_link_is_put_back_without_touching_its_target(
    repo: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The tool points .git/hooks at a folder of the user's: uet neither runs what is there
    nor deletes it when it puts the hooks folder back."""
    yours = tmp_path_factory.mktemp("yours")
    (yours / "post-checkout").write_text("#!/bin/sh\ntouch " + str(yours / "ran") + "\n")
    (yours / "post-checkout").chmod(0o755)
    hooks = repo.root / ".git" / "hooks"
    before = sorted(p.name for p in hooks.iterdir())
    attack = (
        f"import shutil\nh = {ROOT} / '.git' / 'hooks'\nshutil.rmtree(h)\n"
        f"os.symlink({str(yours)!r}, h)\n"
    )
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA", env={"FAKE_RUN_ALSO": attack}, **NONE))
    out = fails_with(repo, "s", "tampered")
    assert "hooks" in out
    assert (yours / "post-checkout").exists() and not (yours / "ran").exists()
    assert not hooks.is_symlink() and sorted(p.name for p in hooks.iterdir()) == before
    assert step_commits(repo) == []


def forge_journal(repo: Project, tip: str) -> Path:
    """A well-formed journal naming a commit that adds evil.sh, as a tool could write it."""
    path = repo.root / ".uet" / "landing.json"
    (repo.root / "evil.sh").write_text("echo evil\n")
    git(repo, "add", "evil.sh")
    tree = git(repo, "write-tree").strip()
    git(repo, "reset", "-q")
    (repo.root / "evil.sh").unlink()
    evil = git(repo, "commit-tree", tree, "-p", tip, "-m", "evil").strip()
    write_journal(path, "main", tip, evil, True)
    return path


def test_a_landing_journal_uet_did_not_record_is_refused(repo: Project) -> None:
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA"))
    assert repo.run().code == 0
    tip = git(repo, "rev-parse", "main").strip()
    path = forge_journal(repo, tip)
    result = repo.run()
    assert result.code == 0, result.out + result.err
    assert "refused" in result.out and "landing.json" in result.out
    assert git(repo, "rev-parse", "main").strip() == tip
    assert not (repo.root / "evil.sh").exists()
    assert not path.exists() and path.with_name("landing.json.refused").exists()


def test_an_output_that_is_a_symlink_leading_out_is_a_scope_violation(repo: Project) -> None:
    attack = "os.remove('out.md')\nos.symlink('/etc/hostname', 'out.md')\n"
    bundle(repo, create_step("s", "out.md", env={"FAKE_RUN_ALSO": attack}, **NONE))
    out = fails_with(repo, "s", "scope_violation")
    assert "out.md -> /etc/hostname" in out
    assert step_commits(repo) == []
    assert not os.path.lexists(repo.root / "out.md")


def test_an_output_git_ignores_is_refused_before_the_tool_is_called(repo: Project) -> None:
    repo.write(".gitignore", "*.out\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore")
    bundle(repo, create_step("s", "report.out"))
    out = fails_with(repo, "s", "bundle_error")
    assert "report.out" in out and "isolation: none" in out
    assert calls(repo) == []


# -- with the sandbox on -----------------------------------------------------------------------

LEVELS = [
    pytest.param("bwrap", marks=pytest.mark.skipif(bool(bwrap_problem()), reason="no bwrap")),
    pytest.param(
        "landlock", marks=pytest.mark.skipif(bool(landlock_problem()), reason="no Landlock")
    ),
]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("target", [".git/config", ".uet/state.db", "../outside.txt", "main"])
def test_the_sandbox_refuses_writes_to_git_uet_and_outside(
    repo: Project, level: str, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Path(os.environ["FAKE_TOOL_LOG"])
    monkeypatch.setenv("UET_SANDBOX_ALLOW_WRITE", str(log.parent))  # only the fakes' log
    if target == "main":  # through git, as a tool that commits would try
        git_call = f"['git', '-C', str({ROOT}), 'update-ref', 'refs/heads/main', 'main~0']"
        attack = f"subprocess.run({git_call}, check=True)\n"
    else:
        attack = f"({ROOT} / {target!r}).write_text('x')\n"
    before = {p: (repo.root / p).read_bytes() for p in (".git/config",)}
    bundle(
        repo, edit_step("s", "a.md", "alpha", "ALPHA", env={"FAKE_RUN_ALSO": attack}, sandbox=level)
    )
    out = fails_with(repo, "s", "sandbox_denied")
    assert "the sandbox refused a write" in out
    assert (repo.root / ".git" / "config").read_bytes() == before[".git/config"]
    assert not (repo.root.parent / "outside.txt").exists()
    assert step_commits(repo) == []


@pytest.mark.parametrize("level", LEVELS)
def test_in_the_sandbox_a_tool_that_commits_still_lands_one_commit(
    repo: Project, level: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Landlock cannot grant a folder holding the project: only the fakes' log folder
    monkeypatch.setenv("UET_SANDBOX_ALLOW_WRITE", str(Path(os.environ["FAKE_TOOL_LOG"]).parent))
    env = {"FAKE_AIDER_MODE": "commit"}
    step_def = edit_step("s", "a.md", "alpha", "ALPHA", env=env, sandbox=level)
    bundle(repo, {**step_def, "tool_options": {"git": True}})
    result = repo.run()
    assert result.code == 0, result.out + result.err
    [commit] = step_commits(repo)
    assert changed_files(repo, commit["sha"]) == ["a.md"]
    assert repo.read("a.md") == "ALPHA\n"


def test_an_unavailable_sandbox_level_is_not_installed_not_silently_none(
    repo: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from uet_doit.tools import sandbox

    monkeypatch.setattr(sandbox, "bwrap_problem", lambda: "bwrap is not installed (test)")
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA", sandbox="bwrap"))
    out = fails_with(repo, "s", "not_installed")
    assert "sandbox `bwrap` is not available on this machine" in out
    assert calls(repo) == []


def test_doctor_says_which_sandbox_auto_means_here_and_shows_a_refused_journal(
    repo: Project,
) -> None:
    bundle(repo, edit_step("s", "a.md", "alpha", "ALPHA"))
    assert repo.run().code == 0
    text = repo.uet("doctor").out
    assert "sandbox: auto = " in text
    assert ("bwrap: available" in text) == (bwrap_problem() is None)
    forge_journal(repo, git(repo, "rev-parse", "main").strip())
    repo.run()
    result = repo.uet("doctor")
    assert result.code == 2 and "landing journal uet refused" in result.out


# -- one repository, two projects -----------------------------------------------------------


@pytest.mark.slow
def test_two_projects_in_one_repository_land_at_the_same_time_without_racing(
    repo: Project,
) -> None:
    import subprocess
    import sys

    import yaml

    for name in ("p1", "p2"):
        folder = repo.root / name
        folder.mkdir()
        steps = []
        for i in range(3):
            (folder / f"f{i}.md").write_text(f"text {i}\n")
            steps.append(
                edit_step(
                    f"{name}-s{i}",
                    f"f{i}.md",
                    f"text {i}",
                    f"TEXT {i}",
                    env={"FAKE_AIDER_MODE": "slow", "FAKE_SLEEP": "0.2"},
                )
            )
        bundle_data = {"bundle_id": name, "workstreams": [{"ws_id": "W", "steps": steps}]}
        (folder / "bundle.yaml").write_text(yaml.safe_dump(bundle_data))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "two projects")
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uet_doit",
                "run",
                "bundle.yaml",
                "-n",
                "2",
                "--reporter",
                "plain",
            ],
            cwd=repo.root / name,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("p1", "p2")
    ]
    outputs = [proc.communicate(timeout=180)[0] for proc in runs]
    assert [proc.returncode for proc in runs] == [0, 0], outputs
    assert len(step_commits(repo)) == 6
    assert git(repo, "status", "--porcelain") == ""
    for name in ("p1", "p2"):
        assert [(repo.root / name / f"f{i}.md").read_text() for i in range(3)] == [
            f"TEXT {i}\n" for i in range(3)
        ]
