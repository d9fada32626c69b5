"""benchmarks/worktree_cost.py at a tiny size: it still runs and prints its figures.

Not a performance check: it only keeps the script runnable as uet-doit changes.
"""

from __future__ import annotations

import os

import pytest

from support import FAKE_TOOLS, load_benchmark


@pytest.mark.slow
def test_worktree_cost_prints_every_figure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{FAKE_TOOLS}{os.pathsep}{os.environ['PATH']}")
    assert (
        load_benchmark("worktree_cost").main(
            ["--files", "20", "--steps", "2", "--jobs", "1", "--repeat", "1"]
        )
        == 0
    )
    out = capsys.readouterr().out
    for label in ("on disk", "add", "snapshot", "land", "reuse", "remove", "overhead/step"):
        assert label in out
