"""Reviews: a reviewer model judges a sentence criterion, or a step's change before it lands.

Every review is an attempt of a review pseudo-step (`<step>.review`, `<ws>.criterion-N`)
that the step policy runs like any other: breaker, budgets (the review's own
`max_cost_usd`, then its workstream's and the bundle's), retries, the executor, redaction.
It is not a step of the plan: it has no state row, only attempts (so `uet cost` counts it
under its workstream). The reviewer works in a scratch folder holding copies of what it
reads, so nothing it writes reaches the project: what it wrote is named and thrown away.
A verdict is kept under a key of the question, the material and the reviewer, so the same
review again is a cached attempt that calls nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from uet_doit.cache.entries import DamagedEntry, Entry
from uet_doit.cache.settings import RunCacheFlag
from uet_doit.cache.stores import CacheStore
from uet_doit.errors import UetError
from uet_doit.run import policy as step_policy
from uet_doit.run.context import RunContext
from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec
from uet_doit.run.executors.base import Declined, Executor, LocalExecutor
from uet_doit.run.executors.cached import CachedAnswer, CachedExecutor
from uet_doit.run.extensions import StepExtension, StepPolicy
from uet_doit.run.policy import SlotProvider
from uet_doit.run.resilience import Clock
from uet_doit.run.review.material import change_material
from uet_doit.run.step_spec import Budget, ReviewerSpec, StepSpec
from uet_doit.state.records import EventKind, StepState
from uet_doit.state.store import RunStore
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.process import ToolProcesses
from uet_doit.tools.routing import AdapterRegistry
from uet_doit.tools.structured import structured_args
from uet_doit.tools.verdict import (
    REVIEW_OPENING,
    VERDICT_SCHEMA,
    Verdict,
    no_verdict,
    read_only_options,
    read_verdict,
)

REVIEWS_DIR = ".uet/reviews"


class Runtime(Protocol):
    """What reviews use of a run's collaborators in this process (run/doit/action.py's
    Runtime is one): a review is an attempt like a step's, with the same store and slots."""

    @property
    def ctx(self) -> RunContext: ...
    @property
    def store(self) -> RunStore: ...
    @property
    def tools(self) -> AdapterRegistry: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def executor(self) -> Executor: ...
    @property
    def slots(self) -> SlotProvider: ...
    @property
    def processes(self) -> ToolProcesses: ...


@dataclass(frozen=True)
class ReviewRequest:
    """One question for a reviewer, with the work it is about."""

    review_id: str  # the pseudo-step its attempts are recorded under
    kind: str  # "criterion" | "step"
    question: str  # the criterion's sentence, or the step's instruction
    material: str  # the diff, or the files the steps made, as text
    source: str  # the folder the files to copy are in
    copies: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewDone:
    """A verdict, and how it was come by."""

    verdict: Verdict
    tool: str
    model: str | None
    cached: bool = False
    wrote: tuple[str, ...] = ()  # what the reviewer changed in its folder (thrown away)
    paused: bool = False  # a budget around it is spent (pause_and_notify): not asked

    @property
    def reviewer(self) -> str:
        return f"{self.tool} {self.model}" if self.model else self.tool


def review_prompt(req: ReviewRequest) -> str:
    if req.kind == "criterion":
        ask = (
            "Judge whether the completion criterion below is met by the work shown after it "
            "(the steps of the plan and the files they made; the files are also in your "
            f"working directory).\n\nCriterion: {req.question}"
        )
    else:
        ask = (
            "Judge whether the change below does what its step was asked to do, completely "
            "and correctly (the changed files are also in your working directory).\n\n"
            f"The step was asked:\n{req.question}"
        )
    answer = (
        "Change no file. Answer with one JSON object and nothing else: "
        '{"met": true or false, "evidence": "what you found, citing the files", '
        '"files": ["the paths your verdict rests on"]}'
    )
    return f"{REVIEW_OPENING} {ask}\n\n{answer}\n\n{req.material}".rstrip() + "\n"


def review_key(reviewer: ReviewerSpec, req: ReviewRequest) -> str:
    parts = {
        "tool": reviewer.tool,
        "model": reviewer.model,
        "kind": req.kind,
        "question": req.question,
        "material": req.material,
        "schema": VERDICT_SCHEMA,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def review_spec(base: StepSpec, reviewer: ReviewerSpec, req: ReviewRequest, key: str) -> StepSpec:
    """The review as a step spec: the base step's retry, breaker and outer budgets."""
    budgets = tuple(b for b in base.budgets if b.scope != "step")
    if reviewer.max_cost_usd is not None:
        budgets = (Budget("step", req.review_id, reviewer.max_cost_usd, "fail"), *budgets)
    options = {k: v for k, v in read_only_options(reviewer.tool).items() if k != "args"}
    return replace(
        base,
        step_id=req.review_id,
        title=f"review {req.review_id}",
        tool=reviewer.tool,
        instruction=review_prompt(req),
        files=(),
        create_files=(),
        signature=key[:32],
        timeout=reviewer.timeout,
        validation=None,
        context={},
        model=reviewer.model,
        tool_options=options,
        max_fix_attempts=0,
        task_kind="review",
        budgets=budgets,
        estimated_cost_usd=None,
        isolation="none",
        scope=(),
        workspace_copy=(),
        workspace_setup=None,
        serialize=False,
        cache_mode="false",
        cache_env=(),
        upstream_outputs=(),
        review=None,
    )


class ReviewPolicy(step_policy.StepPolicy):
    """The step policy for a review: a review is not a step of the plan, so it writes no
    step state (its attempts are all there is of it)."""

    records_step = False


class ReviewSandbox(StepExtension):
    """The reviewer's working directory: a scratch folder with copies of what it reads.
    Whatever it changes there is named in an event and thrown away; a file it judges that it
    changed at its real place (an absolute path) is put back as it was."""

    def __init__(self, req: ReviewRequest, root: Path) -> None:
        self.req = req
        self.root = root
        self.before: dict[str, str] = {}
        self.originals: dict[str, bytes] = {}  # the judged files where they really are
        self.wrote: tuple[str, ...] = ()

    def folder(self, spec: AttemptSpec) -> Path:
        return self.root / REVIEWS_DIR / "work" / spec.run_id / f"{spec.step_id}.{spec.attempt}"

    def prepare_attempt(self, policy: StepPolicy, spec: AttemptSpec) -> AttemptSpec:
        work = self.folder(spec)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        source = Path(self.req.source)
        for rel in self.req.copies:
            src = source / rel
            if src.is_file() and not src.is_symlink():
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                self.originals[rel] = src.read_bytes()
                (work / rel).write_bytes(self.originals[rel])
        self.before = _contents(work)
        schema = self.root / REVIEWS_DIR / "verdict.schema.json"
        if not schema.exists():
            _write_whole(schema, json.dumps(VERDICT_SCHEMA, indent=2) + "\n")
        given = spec.options.get("args") or []
        args = [*([given] if isinstance(given, str) else given)]
        args += read_only_options(spec.tool).get("args", [])
        args += structured_args(spec.tool, schema)
        return replace(spec, project_root=work, options={**spec.options, "args": args})

    def conclude_attempt(
        self, policy: StepPolicy, spec: AttemptSpec, result: AttemptResult
    ) -> AttemptResult:
        work = self.folder(spec)
        after = _contents(work)
        wrote = sorted(p for p in {*self.before, *after} if after.get(p) != self.before.get(p))
        wrote += [f"{rel} (at its real place; put back)" for rel in self._put_back()]
        self.wrote = tuple(wrote)
        if self.wrote:
            policy.store.event(
                spec.run_id,
                EventKind.REVIEW_WROTE,
                spec.step_id,
                files=list(self.wrote),
                message="the reviewer changed files; its changes were thrown away",
            )
        shutil.rmtree(work, ignore_errors=True)
        return result

    def _put_back(self) -> list[str]:
        source = Path(self.req.source)
        restored = []
        for rel, data in self.originals.items():
            path = source / rel
            try:
                same = path.read_bytes() == data
            except OSError:
                same = False
            if not same:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                restored.append(rel)
        return restored

    def abandon_attempt(self, policy: StepPolicy, spec: AttemptSpec) -> None:
        self._put_back()
        shutil.rmtree(self.folder(spec), ignore_errors=True)


def _contents(folder: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(dirpath, name)
            try:
                found[path.relative_to(folder).as_posix()] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
            except OSError:
                continue
    return found


class VerdictBook:
    """Usable verdicts in the step cache's store (`.uet/cache/`, or the shared one), an entry
    without files each, under the review's key: a teammate's run with the same work and
    question reuses them too. A store that cannot be read or a damaged entry is a miss."""

    def __init__(self, root: Path, url: str | None = None) -> None:
        self.store = CacheStore.for_run(root, url)

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            entry = self.store.get_entry(key)
        except (DamagedEntry, UetError):
            return None
        data = entry.extra.get("verdict") if entry is not None else None
        return data if isinstance(data, dict) and isinstance(data.get("met"), bool) else None

    def put(self, key: str, spec: StepSpec, data: dict[str, Any]) -> None:
        cost = data.get("cost")
        entry = Entry(
            key=key,
            parts={"review": spec.step_id},
            bundle_id=spec.bundle_id,
            step_id=spec.step_id,
            tool=spec.tool,
            files=(),
            model=data.get("model"),
            cost_usd=cost if isinstance(cost, int | float) else None,
            run_id=str(data.get("run_id") or ""),
            created=time.time(),
            extra={"verdict": data},
        )
        with contextlib.suppress(UetError):  # not kept: the next run asks again
            self.store.put_entry(entry)


def _write_whole(path: Path, text: str) -> None:
    """Readers (another thread's reviewer, a later run) see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temp.write_text(text, encoding="utf-8")
    temp.replace(path)


class Reviewer:
    """Runs reviews with a run's collaborators (store, adapters, executor, clock, slots)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.ctx: RunContext = replace(runtime.ctx, stop_on_failure=False)
        self.root = runtime.ctx.root_path
        self.book = VerdictBook(self.root, runtime.ctx.cache_store)
        self.reuse = runtime.ctx.cache != RunCacheFlag.OFF  # `--no-cache` asks again
        self.executor: Executor = runtime.executor
        if not runtime.ctx.shared_fs:
            # a worker without the project's filesystem would run the reviewer in a clone
            # and send its edits back as a patch: reviews run here, read-only
            self.executor = LocalExecutor(runtime.tools.resolver(), runtime.processes)

    def review(self, base: StepSpec, reviewer: ReviewerSpec, req: ReviewRequest) -> ReviewDone:
        rt = self.runtime
        key = review_key(reviewer, req)
        spec = review_spec(base, reviewer, req, key)
        kept = self.book.get(key) if self.reuse else None
        if kept is not None:
            reused = self._reuse(spec, reviewer, key, kept)
            if reused is not None:
                return reused
        sandbox = ReviewSandbox(req, self.root)
        policy = ReviewPolicy(
            spec, self.ctx, rt.store, rt.tools, rt.clock, self.executor, rt.slots, [sandbox]
        )
        outcome = policy.run()
        verdict = no_verdict(outcome.message or "the review did not finish")
        model = reviewer.model
        row = rt.store.latest_attempt(spec.bundle_id, spec.step_id) if outcome.ok else None
        if row is not None:
            model = row.model or model  # the model the tool says it used
            verdict = read_verdict(reviewer.tool, _read(row.stdout_path))
            if verdict.usable:
                kept_data = {"run_id": self.ctx.run_id, "cost": row.cost_usd, "model": model}
                self.book.put(key, spec, {**verdict.to_data(), **kept_data})
        paused = outcome.state == StepState.PAUSED
        done = ReviewDone(verdict, reviewer.tool, model, wrote=sandbox.wrote, paused=paused)
        self._event(spec, done)
        return done

    def _reuse(
        self, spec: StepSpec, reviewer: ReviewerSpec, key: str, kept: dict[str, Any]
    ) -> ReviewDone | None:
        """The same question about the same work: the verdict kept, as an attempt of the
        policy's one sequence answered by the cached executor (it reads no file, so no
        sandbox); None when it could not be used after all (the reviewer is asked)."""
        rt = self.runtime
        policy = ReviewPolicy(spec, self.ctx, rt.store, rt.tools, rt.clock, self.executor)
        saved = kept.get("cost")
        answer = CachedAnswer(
            message=f"verdict of run {kept.get('run_id')} reused: nothing changed since",
            cache_key=key,
            model=reviewer.model,
            saved_usd=saved if isinstance(saved, int | float) else None,
        )
        number = rt.store.max_attempt(self.ctx.run_id, spec.step_id) + 1
        try:
            policy.attempt(
                policy.attempt_spec(reviewer.tool, number, spec.instruction), CachedExecutor(answer)
            )
        except Declined:
            return None
        files = kept.get("files")
        verdict = Verdict(
            bool(kept["met"]),
            str(kept.get("evidence") or ""),
            tuple(map(str, files)) if isinstance(files, list) else (),
        )
        model = kept.get("model") if isinstance(kept.get("model"), str) else reviewer.model
        done = ReviewDone(verdict, reviewer.tool, model, cached=True)
        self._event(spec, done)
        return done

    def _event(self, spec: StepSpec, done: ReviewDone) -> None:
        self.runtime.store.event(
            self.ctx.run_id,
            EventKind.REVIEWED,
            spec.step_id,
            reviewer=done.reviewer,
            met=done.verdict.met,
            evidence=done.verdict.evidence,
            files=list(done.verdict.files),
            cached=done.cached,
        )


def _read(path: str | None) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


class StepReview(StepExtension):
    """`review: {steps: true}`: after its validation passed, a step's change is judged
    before it lands (this extension comes after the worktree's scope and tamper checks and
    before its landing: nothing refused anyway is paid for). A rejection fails the attempt
    as `review_rejected` with the reasons, which the fix loop sends to the tool."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._reviewer: Reviewer | None = None

    def conclude_attempt(
        self, policy: StepPolicy, spec: AttemptSpec, result: AttemptResult
    ) -> AttemptResult:
        reviewer = policy.spec.review
        if reviewer is None or not result.success:
            return result
        if self._reviewer is None:
            self._reviewer = Reviewer(self.runtime)
        step = policy.spec
        req = ReviewRequest(
            review_id=f"{step.step_id}.review",
            kind="step",
            question=step.instruction,
            material=change_material(step.paths, policy.root, spec.project_root),
            source=str(spec.project_root),
            copies=step.paths,
        )
        done = self._reviewer.review(step, reviewer, req)
        verdict = done.verdict
        if verdict.met:
            return replace(result, reviewed_by=done.reviewer)
        if verdict.met is False:
            files = f" (files: {', '.join(verdict.files)})" if verdict.files else ""
            reasons = f"{verdict.evidence}{files}"
            return result.failed_as(
                FailureClass.REVIEW_REJECTED,
                f"the reviewer ({done.reviewer}) rejected the change: {reasons}",
                output_tail=reasons,
            )
        return result.failed_as(
            FailureClass.NO_VERDICT,
            f"the reviewer ({done.reviewer}) gave {verdict.evidence}; the change was not landed",
        )
