"""benchmarks/worktree_cost.py at a tiny size: it still runs and prints its figures.

Not a performance check: it only keeps the script runnable as uet-doit changes.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from support import FAKE_TOOLS, REPO


@pytest.mark.slow
def test_worktree_cost_prints_every_figure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{FAKE_TOOLS}{os.pathsep}{os.environ['PATH']}")
    script = REPO / "benchmarks" / "worktree_cost.py"
    spec = importlib.util.spec_from_file_location("uet_worktree_cost", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    assert module.main(["--files", "20", "--steps", "2", "--jobs", "1", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    for label in ("on disk", "add", "snapshot", "land", "reuse", "remove", "overhead/step"):
        assert label in out
