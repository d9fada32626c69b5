"""The tamper check of git's own files while a tool runs (GitSurface)."""

from __future__ import annotations

from pathlib import Path

from uet_doit.run.workspaces.git import GitSurface

BLOCK = "\n# uet-doit local state\n/p2/.uet/\n/p2/.doit.db*\n"  # what isolation._ignore_state adds


def git_dir(tmp_path: Path) -> Path:
    common = tmp_path / ".git"
    (common / "info").mkdir(parents=True)
    (common / "hooks").mkdir()
    (common / "config").write_text("[core]\n\tbare = false\n")
    (common / "info" / "exclude").write_text("# git ls-files --others --exclude-from\n")
    return common


def test_another_projects_run_ignoring_its_state_is_not_tampering(tmp_path: Path) -> None:
    common = git_dir(tmp_path)
    surface = GitSurface(common)
    with (common / "info" / "exclude").open("a") as fh:  # p2's `uet run` starts meanwhile
        fh.write(BLOCK)
    assert surface.changes() == []


def test_a_tools_exclude_line_is_put_back_keeping_another_runs_block(tmp_path: Path) -> None:
    common = git_dir(tmp_path)
    exclude = common / "info" / "exclude"
    before = exclude.read_text()
    surface = GitSurface(common)
    exclude.write_text(before + "secret-output.txt\n" + BLOCK)  # the tool's line, then p2's
    assert surface.changes() == ["info/exclude"]
    surface.restore(["info/exclude"])
    assert exclude.read_text() == before + BLOCK
    assert surface.changes() == []


def test_a_block_shaped_line_of_another_kind_is_still_a_change(tmp_path: Path) -> None:
    common = git_dir(tmp_path)
    surface = GitSurface(common)
    with (common / "info" / "exclude").open("a") as fh:
        fh.write("\n# uet-doit local state\n/p2/.uet/\n/src/*.py\n")
    assert surface.changes() == ["info/exclude"]
