"""The pytest tool: runs the step's test files and reports pytest's summary."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from uet_doit.tools.adapters.base import StepRequest
from uet_doit.tools.adapters.pytest_tool import PytestAdapter, summary_line
from uet_doit.tools.failures import FailureClass


def make_request(
    root: Path, files: tuple[str, ...], options: dict[str, Any] | None = None
) -> StepRequest:
    env = dict(os.environ)
    return StepRequest(
        step_id="t",
        ws_id="w",
        tool="pytest",
        instruction="run tests",
        files=files,
        create_files=(),
        project_root=root,
        env=env,
        timeout=60,
        result_file=root / "logs" / "r.json",
        stdout_path=root / "logs" / "out.log",
        stderr_path=root / "logs" / "err.log",
        options={"python": sys.executable, **(options or {})},
    )


def write_tests(root: Path) -> None:
    (root / "test_ok.py").write_text("def test_a():\n    assert True\n", encoding="utf-8")
    (root / "test_bad.py").write_text(
        "def test_b():\n    assert False\n\ndef test_c():\n    pass\n", encoding="utf-8"
    )


def test_argv_runs_python_m_pytest_on_the_step_files(tmp_path: Path) -> None:
    argv = PytestAdapter().build(make_request(tmp_path, ("tests/test_x.py",))).argv
    assert argv == [sys.executable, "-m", "pytest", "-q", "tests/test_x.py"]
    args = make_request(tmp_path, ("a.py",), {"args": ["-k", "fast", "tests"]})
    assert PytestAdapter().build(args).argv[-3:] == ["-k", "fast", "tests"]


@pytest.mark.slow  # real pytest in a child process
def test_passing_and_failing_runs(tmp_path: Path) -> None:
    write_tests(tmp_path)
    ok = PytestAdapter().execute(make_request(tmp_path, ("test_ok.py",)))
    assert ok.success and ok.message.startswith("pytest: 1 passed in ")
    bad = PytestAdapter().execute(make_request(tmp_path, ("test_bad.py",)))
    assert not bad.success and bad.failure_class is FailureClass.VALIDATION
    assert "1 failed, 1 passed" in bad.message


def test_no_tests_collected_is_a_clear_failure(tmp_path: Path) -> None:
    (tmp_path / "empty_dir").mkdir()
    result = PytestAdapter().execute(make_request(tmp_path, ("empty_dir",)))
    assert result.exit_code == 5 and not result.success
    assert result.failure_class is FailureClass.PERMANENT
    assert "no tests were collected from empty_dir" in result.message


def test_summary_line_forms() -> None:
    assert summary_line("..\n2 passed, 1 warning in 0.01s\n") == "2 passed, 1 warning in 0.01s"
    assert summary_line("== 1 failed, 3 passed in 1.20s ==\n") == "1 failed, 3 passed in 1.20s"
    assert summary_line("\nno tests ran in 0.00s\n") == "no tests ran in 0.00s"
    assert summary_line("nothing here") is None


@pytest.mark.slow  # real pytest in a child process
def test_a_file_named_like_an_option_is_a_file_not_an_option(tmp_path: Path) -> None:
    """Given as it is, pytest took `--help` as its option: help printed, exit 0, a false pass."""
    result = PytestAdapter().execute(make_request(tmp_path, ("--help",)))
    assert not result.success
    assert "usage:" not in result.output_tail
    (tmp_path / "--co.py").write_text("def test_a():\n    pass\n", encoding="utf-8")
    ran = PytestAdapter().execute(make_request(tmp_path, ("--co.py",)))
    assert ran.success and ran.message.startswith("pytest: 1 passed")
