"""What a killed run left behind: finished work doit did not save, and tools still running.

A success recorded just before the kill is recognised by the step's definition and the
fingerprint of its files; a tool that outlived its runner (it runs in its own session
behind an exit-code trap) is waited for and its result adopted, so nothing runs twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uet_doit.run.step_spec import fingerprint
from uet_doit.state.store import current_session, pid_alive
from uet_doit.tools.process import ProcessResult, read_tail

if TYPE_CHECKING:
    from uet_doit.run.step_runner import StepExecution


def left_behind(ex: StepExecution) -> dict[str, Any] | None:
    """The step's newest attempt, if a runner that is gone left it: adopt or recover it."""
    row = ex.store.latest_attempt(ex.spec.bundle_id, ex.spec.step_id)
    if row is None or row["session"] == current_session():
        return None  # nothing, or this very runner's own attempt
    if row["outcome"] in ("running", "interrupted") and row["exit_file"]:
        return adopt_orphan(ex, row)
    if row["outcome"] == "succeeded" and row["run_status"] in ("interrupted", "running"):
        return recovered(ex, row)  # a run that ended normally saved its doit state itself
    return None


def recovered(ex: StepExecution, prev: Any) -> dict[str, Any] | None:
    """A success recorded by a run killed before doit saved it: not done twice."""
    if prev["signature"] != ex.spec.signature:
        return None
    if prev["fingerprint"] != fingerprint(ex.root, ex.paths):
        return None
    ex.store.event(ex.run_id, "recovered", ex.spec.step_id, from_run=prev["run_id"])
    ex._status("succeeded", f"finished in run {prev['run_id']}")
    return {"run_id": ex.run_id, "attempts": 0, "recovered_from": prev["run_id"]}


def adopt_orphan(ex: StepExecution, row: Any) -> dict[str, Any] | None:
    """A tool left running by a killed runner: wait for it, then judge what it did."""
    from uet_doit.run import step_runner

    exit_file = Path(row["exit_file"])
    pid = row["pid"] or _find_wrapper(exit_file)

    if pid and _still_running(pid, exit_file):
        ex._status(
            "waiting",
            f"waiting for the attempt left running by run {row['run_id']} (pid {pid})",
        )
        deadline = ex.clock.now() + ex.timeout()
        while _still_running(pid, exit_file) and ex.clock.now() < deadline:
            ex.clock.sleep(0.05)
        if _still_running(pid, exit_file):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    try:
        code = int(exit_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        ex.store.finish_attempt(
            row["id"],
            "interrupted",
            failure_class="interrupted",
            message="the runner was killed while this attempt ran",
        )
        return None
    out, err = Path(row["stdout_path"]), Path(row["stderr_path"])
    result_file = out.with_name(out.name.replace(".stdout", ".result.json"))
    env = ex._env(row["attempt"], result_file)
    request = ex._request(row["attempt"], ex.spec.instruction, env, out, err, result_file)
    proc = ProcessResult(
        argv=(), exit_code=code, stdout=read_tail(out), stderr=read_tail(err), duration_s=0.0
    )
    ex.tool = row["tool"] or ex.tool
    result = step_runner.resolve_adapter(ex.tool, ex.root).parse(request, proc)
    result = ex._check_result(result, env, out, err, result_file)
    ex._scrub(result, request.env, out, err)
    ex._finish(row["id"], result)
    ex.store.event(
        ex.run_id,
        "adopted",
        ex.spec.step_id,
        from_run=row["run_id"],
        success=result.success,
    )
    if not result.success:
        return None
    ex._status("succeeded", f"finished by the tool run {row['run_id']} started")
    return {"run_id": ex.run_id, "attempts": 0, "adopted_from": row["run_id"]}


def _find_wrapper(exit_file: Path) -> int | None:
    """The tool wrapper writing `exit_file`, when the runner died before noting its pid."""
    needle = str(exit_file).encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    return None


def _still_running(pid: int, exit_file: Path) -> bool:
    """Is `pid` alive, not a zombie, and still our tool's wrapper (its argv names exit_file)?"""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: a live pid is taken to be ours
    return str(exit_file).encode() in cmdline
