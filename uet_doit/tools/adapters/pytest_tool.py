"""`pytest`: run the step's test files with `python -m pytest -q` and report its summary.

`python -m` (rather than the `pytest` script) puts the project root on sys.path, as the
project's own test runs usually do. Exit 5 ("no tests collected") is a failure: a test step
that tests nothing is a mistake in the bundle, not a pass.
"""

from __future__ import annotations

import re
import shutil
import sys

from uet_doit.tools.adapters.agent import extra_args, tail
from uet_doit.tools.adapters.base import (
    Invocation,
    StepRequest,
    ToolAdapter,
    ToolResult,
    failed_process,
)
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.process import ProcessResult

_SUMMARY = re.compile(
    r"^=*\s*((?:\d+ [a-z]+(?:, )?)+|no tests ran)(?: in [\d.]+s(?: \([^)]*\))?)\s*=*$",
    re.M,
)
_NO_PYTEST = re.compile(r"No module named pytest")

#: pytest's exit codes (ExitCode) and what each means for the step
_EXIT_CLASSES = {
    1: (FailureClass.VALIDATION, "tests failed"),
    2: (FailureClass.VALIDATION, "test run interrupted (collection errors?)"),
    3: (FailureClass.UNKNOWN, "pytest internal error"),
    4: (FailureClass.PERMANENT, "pytest usage error"),
    5: (FailureClass.PERMANENT, "no tests were collected"),
}


def summary_line(output: str) -> str | None:
    """pytest's final `N passed, M failed in 0.12s` line, without the `=` rulers."""
    matches = list(_SUMMARY.finditer(output))
    return matches[-1].group(0).strip("= ").strip() if matches else None


class PytestAdapter(ToolAdapter):
    name = "pytest"
    executable = "pytest"
    install_hint = "pip install pytest"
    in_place = True
    cached_by_default = False
    reviewer = False

    def build(self, request: StepRequest) -> Invocation:
        python = (
            request.options.get("python")
            or shutil.which("python", path=request.env.get("PATH"))
            or shutil.which("python3", path=request.env.get("PATH"))
            or sys.executable
        )
        # pytest reads `--help` as its option even after `--` (measured, pytest 9.2), so a
        # file whose name starts with '-' goes as `./-name`; `args` are options (`-k fast
        # tests`) the user wrote on purpose and go as they are
        targets = extra_args(request) or [
            f"./{f}" if f.startswith("-") else f for f in request.files
        ]
        return Invocation(
            argv=[str(python), "-m", "pytest", "-q", *targets],
            env=dict(request.env),
            cwd=request.project_root,
        )

    def parse(self, request: StepRequest, proc: ProcessResult) -> ToolResult:
        if proc.timed_out:
            return failed_process(proc)
        summary = summary_line(proc.stdout) or ""
        if proc.exit_code == 0:
            return ToolResult(
                success=True,
                exit_code=0,
                message=f"pytest: {summary or 'passed'}",
                output_tail=tail(proc),
            )
        if _NO_PYTEST.search(proc.output):
            return ToolResult(
                success=False,
                exit_code=proc.exit_code,
                message=f"pytest is not installed for {proc.argv[0]}: {self.install_hint}",
                failure_class=FailureClass.PERMANENT,
                output_tail=tail(proc),
            )
        if proc.exit_code in _EXIT_CLASSES:
            cls, what = _EXIT_CLASSES[proc.exit_code]
            if proc.exit_code == 5:
                where = " ".join(extra_args(request) or request.files) or request.project_root
                what = f"no tests were collected from {where}: check the file names and paths"
            detail = f" ({summary})" if summary and proc.exit_code != 5 else ""
            return ToolResult(
                success=False,
                exit_code=proc.exit_code,
                message=f"pytest: {what}{detail}",
                failure_class=cls,
                output_tail=tail(proc),
            )
        return failed_process(proc)
