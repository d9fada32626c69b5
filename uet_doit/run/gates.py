"""Test gates (a doit task after a workstream's steps) and completion criteria.

A failed blocking gate fails its task, so doit leaves everything that depends on the
workstream unrun (shown as blocked by the gate); a non-blocking one records a warning and
passes; an optional gate whose command is not installed is skipped with a note.
Gates and criteria run with the user's environment, keys included, so their logs, events
and messages go through the same redaction as a step's (and logs are capped the same way).
"""

from __future__ import annotations

import inspect
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doit.exceptions import TaskFailed

from uet_doit.bundle.model import Bundle, CriterionCommand, CriterionFiles, Workstream
from uet_doit.run.context import RunContext
from uet_doit.run.doit.action import Runtime
from uet_doit.run.step_spec import GateSpec
from uet_doit.state.records import DONE_STEP_STATES, CriterionState, EventKind
from uet_doit.state.store import RunStore
from uet_doit.tools.commands import command_argv
from uet_doit.tools.process import read_tail, run_process
from uet_doit.tools.redact import Redactor

if TYPE_CHECKING:
    from uet_doit.run.review.criteria import CriterionJudge

#: how to get the tools gates usually call
INSTALL_HINTS = {
    "markdownlint": "npm install -g markdownlint-cli",
    "markdownlint-cli2": "npm install -g markdownlint-cli2",
    "pytest": "pip install pytest",
    "ruff": "pip install ruff",
    "mypy": "pip install mypy",
    "eslint": "npm install -g eslint",
    "lychee": "cargo install lychee",
    "mkdocs": "pip install mkdocs",
    "vale": "see https://vale.sh/docs/install",
}


class GateAction:
    """doit action of a gate: None on pass (or warning/skip), TaskFailed on a blocking fail."""

    __signature__ = inspect.Signature()  # doit inspects actions for keyword arguments

    def __init__(self, spec: GateSpec, ctx: RunContext) -> None:
        self.spec = spec
        self.ctx = ctx

    def __repr__(self) -> str:
        return f"<uet gate {self.spec.label}>"

    def __call__(self) -> dict[str, Any] | TaskFailed:
        spec = self.spec
        root = Path(spec.project_root)
        runtime = Runtime.for_context(self.ctx)
        runtime.register_run()
        store, run_id = runtime.store, self.ctx.run_id
        env = dict(os.environ)
        redact = Redactor.cached_for(env).redact
        command = spec.command if isinstance(spec.command, str) else " ".join(spec.command)
        base = {
            "scope": spec.scope,
            "ws_id": None if spec.scope == "bundle" else spec.scope,
            "gate_type": spec.gate_type,
            "index": spec.index,
            "command": redact(command),
            "blocking": spec.blocking,
            "required": spec.required,
        }
        exe = spec.executable
        if exe and not _installed(exe, root):
            hint = INSTALL_HINTS.get(Path(exe).name, f"install {exe}")
            if not spec.required:
                note = redact(f"skipped: {exe} is not installed (optional gate; {hint})")
                store.event(run_id, EventKind.GATE_SKIPPED, None, **base, message=note)
                return {"gate": "skipped"}
            note = redact(
                f"{exe} is not installed; install with: {hint} (or mark the gate required: false)"
            )
            store.event(run_id, EventKind.GATE_FAILED, None, **base, message=note)
            return TaskFailed(f"gate {spec.label} failed: {note}")
        log_dir = root / ".uet" / "runs" / run_id / "gates"
        stem = f"{spec.scope}.{spec.index + 1}"
        logs = (log_dir / f"{stem}.stdout", log_dir / f"{stem}.stderr")
        try:
            proc = run_process(
                spec.argv,
                cwd=root,
                env=env,
                timeout=spec.timeout,
                stdout_path=logs[0],
                stderr_path=logs[1],
                processes=runtime.processes,
            )
        finally:  # an interrupted gate's logs are scrubbed too
            for log in logs:
                Redactor.cached_for(env).redact_file(log, max_bytes=spec.max_log_bytes)
        if proc.exit_code == 0:
            store.event(run_id, EventKind.GATE_PASSED, None, **base, message="passed")
            return {"gate": "passed"}
        # from the redacted logs: the tail of an unredacted one may begin inside a key
        output = redact(f"{read_tail(logs[0])}\n{read_tail(logs[1])}")
        tail = "\n".join(output.strip().splitlines()[-10:])
        got = "timed out" if proc.timed_out else f"exit code {proc.exit_code}"
        message = redact(f"`{base['command']}` gave {got}\n{tail}".strip())
        if not spec.blocking:
            store.event(run_id, EventKind.GATE_FAILED, None, **base, message=message, warning=True)
            return {"gate": "warning"}
        store.event(run_id, EventKind.GATE_FAILED, None, **base, message=message)
        return TaskFailed(f"gate {spec.label} failed: {message}")


def _installed(exe: str, root: Path) -> bool:
    if "/" in exe:
        return (root / exe).exists() or Path(exe).exists()
    return shutil.which(exe) is not None


def evaluate_criteria(
    bundle: Bundle,
    root: Path,
    store: RunStore,
    run_id: str,
    judge: CriterionJudge | None = None,
) -> list[dict[str, Any]]:
    """Check structured completion criteria of workstreams whose steps are all done (and of
    the bundle when all are); a skipped step is not done, so its workstream's criteria are
    "not evaluated". Sentences are judged by the `judge` where a `review` names a reviewer,
    else listed as "to confirm". Each result is an event."""
    if not bundle.completion_criteria and not any(
        ws.completion_criteria for ws in bundle.workstreams
    ):
        return []  # nothing to judge: the step states need not be read
    states = store.step_states(run_id)
    env = dict(os.environ)
    redactor = Redactor.cached_for(env)
    results: list[dict[str, Any]] = []

    def finished(step_ids: list[str]) -> bool:
        return all(states.get(s) in DONE_STEP_STATES for s in step_ids)

    scopes: list[tuple[str, Workstream | None, list[Any], bool]] = [
        (ws.ws_id, ws, list(ws.completion_criteria), finished([s.step_id for s in ws.steps]))
        for ws in bundle.workstreams
    ]
    scopes.append(
        (
            "bundle",
            None,
            list(bundle.completion_criteria),
            finished([s.step_id for _, s in bundle.steps()]),
        )
    )
    for scope, ws, criteria, done in scopes:
        reviewed = judge is not None and judge.reviews(ws)
        for index, crit in enumerate(criteria):
            extra: dict[str, Any] = {}
            if isinstance(crit, str) and not reviewed:
                state, description, detail = CriterionState.TO_CONFIRM, crit, ""
            elif isinstance(crit, str) and not done:
                state, description, detail = CriterionState.NOT_EVALUATED, crit, "steps not done"
            elif isinstance(crit, str):
                assert judge is not None
                judged = judge.judge(ws, index, crit)
                state, description, detail = judged.state, crit, judged.detail
                extra = judged.extra
            elif not done:
                state, description, detail = (
                    CriterionState.NOT_EVALUATED,
                    crit.description,
                    "steps not done",
                )
            elif isinstance(crit, CriterionFiles):
                missing = [f for f in crit.files_exist if not (root / f).exists()]
                state = CriterionState.UNMET if missing else CriterionState.MET
                description, detail = (
                    crit.description,
                    f"missing: {', '.join(missing)}" if missing else "",
                )
            else:
                assert isinstance(crit, CriterionCommand)
                cmd = crit.command if isinstance(crit.command, str) else list(crit.command)
                try:
                    proc = run_process(command_argv(cmd), cwd=root, env=env, timeout=600)
                    ok = proc.exit_code == crit.expected_exit_code
                    # redacted before it is cut, so the cut cannot leave half a key
                    output = redactor.redact(proc.output).strip()
                    detail = "" if ok else f"exit code {proc.exit_code}: {output[-300:]}"
                except FileNotFoundError:
                    ok, detail = False, "command not found"
                state = CriterionState.MET if ok else CriterionState.UNMET
                description = crit.description
            result = {
                "scope": scope,
                "description": redactor.redact(description),
                "state": state,
                "detail": redactor.redact(detail),
                **redactor.redact_data(extra),
            }
            store.event(run_id, EventKind.CRITERION, None, **result)
            results.append(result)
    return results
