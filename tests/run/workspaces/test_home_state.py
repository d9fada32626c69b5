"""A real AI CLI's first run in uet's sandbox: the state it keeps under $HOME (config, sessions,
logs, Claude's `~/.claude.json`) does not exist yet, and the sandbox must still let it be made,
while the rest of $HOME and the project stay read-only. The fake CLIs leave what the real ones
leave (uet_doit/fake_tools/_fakehome.py) and fail, as the real ones do, when refused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from git_support import bundle, calls, git, step_commits

from uet_doit.testing import FakeTools
from uet_doit.tools.routing import resolve_adapter
from uet_doit.tools.sandbox import attempt_spec, bwrap_problem, landlock_problem

from support import Project

LEVELS = [
    pytest.param("bwrap", marks=pytest.mark.skipif(bool(bwrap_problem()), reason="no bwrap")),
    pytest.param(
        "landlock", marks=pytest.mark.skipif(bool(landlock_problem()), reason="no Landlock")
    ),
]
TOOLS = ["aider", "claude", "codex", "gemini"]


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path beneath `folder`, with a file's bytes (None for a folder)."""
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def allowed(tool: str, home: Path, root: Path) -> list[Path]:
    """Where `tool` may write under `home`: what its adapter declares."""
    adapter = resolve_adapter(tool, root)
    env = {"HOME": str(home)}
    return [*adapter.home_state(env), *adapter.home_files(env)]


def beneath(path: Path, places: list[Path]) -> bool:
    return any(path == place or place in path.parents for place in places)


@pytest.mark.slow
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("tool", TOOLS)
def test_a_first_run_in_a_fresh_home_succeeds_and_writes_only_its_own_state(
    repo: Project,
    tool: str,
    level: str,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = Path(os.environ["FAKE_TOOL_LOG"])
    monkeypatch.setenv("UET_SANDBOX_ALLOW_WRITE", str(log.parent))  # only the fakes' log
    home = tmp_path_factory.mktemp("home")  # fresh: no ~/.claude.json, ~/.codex, ...
    monkeypatch.setenv("HOME", str(home))
    (home / "notes.txt").write_text("the user's own file\n")
    step_def = {
        "step_id": "s",
        "tool_profile_id": tool,
        "context": {"files": ["notes.md"], "create_files": ["out.md"], "instruction": "summarise"},
        "sandbox": level,
    }
    bundle(repo, step_def)
    before = git(repo, "status", "--porcelain")
    result = repo.run()
    assert result.code == 0, result.out + result.err
    [commit] = step_commits(repo)
    assert git(repo, "show", "--format=", "--name-only", commit["sha"]).split() == ["out.md"]
    assert git(repo, "status", "--porcelain") == before  # the project: only the landing
    [call] = calls(repo)
    assert call["exit_code"] == 0 and call["home_written"], call
    places = allowed(tool, home, repo.root)
    uet_dir = (repo.root / ".uet").resolve()
    for written in map(Path, call["home_written"]):
        # each under its declared home state, or the attempt's own temp dir (TMPDIR)
        assert beneath(written, places) or uet_dir in written.resolve().parents, written
        assert written.exists(), written
    after = tree(home)
    assert after.pop("notes.txt") == b"the user's own file\n"
    strays = [name for name in after if not beneath(home / name, places)]
    # what uet made to bind (parents of the declared places) and nothing else
    assert all(any(home / name in place.parents for place in places) for name in strays), strays


@pytest.mark.parametrize("level", LEVELS)
def test_claude_without_its_config_file_granted_fails_its_first_run(
    fake_tools: FakeTools, tmp_path: Path, level: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gap the adapter closes: `~/.claude.json` bound only if it existed, so a first run
    could not create it in the read-only $HOME; granted (made `{}` first), it is saved."""
    monkeypatch.setenv("UET_SANDBOX_ALLOW_WRITE", str(fake_tools.folder))
    home, work = tmp_path / "home", tmp_path / "work"
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(work)}
    adapter = resolve_adapter("claude", work)
    spec = attempt_spec(level, [([work], "own")])
    argv = ["claude", "-p", "--output-format", "json", "--", "hello"]

    def run(files: dict[Path, str]) -> subprocess.CompletedProcess[str]:
        wrapped = spec.with_own(adapter.home_state(env), files).wrap(argv)
        return subprocess.run(
            wrapped, cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    refused = run({})
    assert refused.returncode == 1, refused.stderr
    assert "Read-only file system" in refused.stderr or "Permission denied" in refused.stderr
    assert not (home / ".claude.json").exists()
    granted = run(adapter.home_files(env))
    assert granted.returncode == 0, granted.stderr
    saved = (home / ".claude.json").read_text()
    assert '"numStartups": 1' in saved  # its state, written in place of the `{}` uet made
    assert sorted(p.name for p in home.iterdir()) == [".claude", ".claude.json", ".local"]


def test_state_places_are_made_before_binding_and_a_users_own_file_is_kept(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".claude.json").write_text('{"userID": "mine"}')
    env = {"HOME": str(home), "CODEX_HOME": str(tmp_path / "codex.d")}
    claude, codex = resolve_adapter("claude", tmp_path), resolve_adapter("codex", tmp_path)
    spec = attempt_spec("bwrap", []).with_own(
        [*claude.home_state(env), *codex.home_state(env)], claude.home_files(env)
    )
    assert (tmp_path / "codex.d").is_dir()  # a folder, though its name has a dot
    assert (home / ".claude").is_dir() and (home / ".local" / "state" / "claude").is_dir()
    assert (home / ".claude.json").read_text() == '{"userID": "mine"}'  # never replaced
    assert (str(home / ".claude.json"), "own") in spec.binds
    assert (str(home), "own") not in spec.binds  # the folder around it stays read-only


def test_claude_config_dir_holds_its_config_file(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": str(tmp_path / "cc")}
    claude = resolve_adapter("claude", tmp_path)
    assert tmp_path / "cc" in claude.home_state(env)
    assert claude.home_files(env) == {}  # $CLAUDE_CONFIG_DIR/.claude.json: in its folder
    new = resolve_adapter("claude", tmp_path).home_files({"HOME": str(tmp_path / "fresh")})
    assert new == {tmp_path / "fresh" / ".claude.json": "{}\n"}
