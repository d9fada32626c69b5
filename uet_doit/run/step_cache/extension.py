"""The step cache as a step extension: look up before a step, store after its success.

A hit is an attempt of the policy's one sequence answered by the cached executor
(run/executors/cached.py): the entry's files go in the attempt's working directory (an
isolated workspace gets them like any attempt's output), the step's validation and the other
extensions judge them, and the attempt is recorded as `cached`, cost 0, the original cost
as saved.
Nothing the cache does can fail a step: a store that cannot be reached, or an entry that
fails its hash, is a warning and the step runs.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import TextIO

from uet_doit.cache.blobs import digest_file
from uet_doit.cache.entries import DamagedEntry, Entry, EntryFile
from uet_doit.cache.settings import CacheMode, RunCacheFlag, step_mode
from uet_doit.cache.stores import CacheStore
from uet_doit.errors import CacheStoreError, UetError
from uet_doit.run.context import RunContext
from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec
from uet_doit.run.executors.base import Declined
from uet_doit.run.executors.cached import CachedAnswer, CachedExecutor
from uet_doit.run.extensions import StepExtension, StepOutcome, StepPolicy
from uet_doit.run.step_cache.keys import StepKey
from uet_doit.run.step_cache.lookup import KeyMaker
from uet_doit.run.step_spec import StepSpec
from uet_doit.state.records import AttemptOutcome, EventKind, StepState
from uet_doit.tools.routing import AdapterRegistry

_log = logging.getLogger(__name__)


def cache_extension(ctx: RunContext, tools: AdapterRegistry) -> StepCache | None:
    """The run's step cache, unless `--no-cache` turned it off."""
    if ctx.cache == RunCacheFlag.OFF:
        return None
    return StepCache(ctx, tools)


class StepCache(StepExtension):
    def __init__(self, ctx: RunContext, tools: AdapterRegistry, err: TextIO | None = None) -> None:
        self.ctx = ctx
        self.store = CacheStore.for_run(ctx.root_path, ctx.cache_store)
        self.keys = KeyMaker(ctx.root_path, tools)
        self.err = err
        self.pending: dict[str, StepKey] = {}  # step_id -> its key, from before it ran
        self.unreachable: str | None = None  # said once; the rest of the run goes without

    def mode(self, spec: StepSpec) -> CacheMode:
        mode, _why = step_mode(
            spec.tool, spec.cache_mode, self.ctx.cache, self.ctx.cache_store is not None
        )
        return mode

    def warn(self, policy: StepPolicy, message: str) -> None:
        policy.store.event(
            self.ctx.run_id, EventKind.CACHE_WARNING, policy.spec.step_id, message=message
        )
        if self.ctx.quiet and self.err is None:
            return
        out = self.err or sys.stderr
        out.write(f"warning: step cache ({policy.spec.step_id}): {message}\n")
        out.flush()

    def _store_failed(self, policy: StepPolicy, exc: CacheStoreError) -> None:
        if self.unreachable is None:
            self.unreachable = exc.message
            self.warn(policy, f"{exc.message}; the run goes on without the cache store")

    # -- lookup ------------------------------------------------------------------------------
    def before_step(self, policy: StepPolicy) -> StepOutcome | None:
        spec = policy.spec
        if self.mode(spec) == CacheMode.OFF:
            return None
        try:
            key = self.keys.key(spec)
        except UetError:
            return None  # e.g. a broken router config: the policy reports it
        self.pending[spec.step_id] = key
        if self.unreachable:
            return None
        try:
            entry = self.store.get_entry(key.key)
        except DamagedEntry as exc:
            self.warn(policy, f"{exc}; treated as a miss, the step runs")
            return None
        except CacheStoreError as exc:
            self._store_failed(policy, exc)
            return None
        if entry is None:
            _log.debug("cache %s: miss (key %s)", spec.step_id, key.key[:12])
            return None
        _log.debug("cache %s: hit (key %s, run %s)", spec.step_id, key.key[:12], entry.run_id)
        if sorted(f.path for f in entry.files) != sorted(spec.create_files):
            # a shared store is not trusted to name files: only the step's own outputs
            self.warn(policy, f"entry {key.key[:12]} names other files than the step creates")
            return None
        if entry.size > spec.cache_max_bytes:
            self.warn(policy, f"entry {key.key[:12]} {_too_big(entry.size, spec)}; the step runs")
            return None
        return self._restore(policy, key, entry)

    def _restore(self, policy: StepPolicy, key: StepKey, entry: Entry) -> StepOutcome | None:
        """The hit as an attempt of the policy's one sequence, answered by the cached
        executor; an entry that turns out unusable is a warning, and the step runs."""

        spec, ctx = policy.spec, self.ctx
        attempt_no = policy.store.max_attempt(ctx.run_id, spec.step_id) + 1
        tool = entry.tool if spec.tool == "auto" else spec.tool
        saved = entry.cost_usd or 0.0
        note = f"from the cache (entry {key.key[:12]} of run {entry.run_id}, saved ${saved:.4f})"
        log = (
            f"[restored from the step cache: entry {entry.key[:12]}, made by run "
            f"{entry.run_id} with {entry.tool} {entry.tool_version or ''}]\n{entry.output_tail}"
        )
        answer = CachedAnswer(
            message=note,
            cache_key=key.key,
            model=entry.model,
            saved_usd=entry.cost_usd,
            files=tuple(item.path for item in entry.files),
            restore=lambda workdir: self._fetch(entry, workdir),
            log=log,
        )
        executor = CachedExecutor(answer)
        aspec = policy.attempt_spec(tool, attempt_no, spec.instruction)
        try:
            policy.attempt(aspec, executor, success_note=note)
        except _Unreachable as exc:
            self._store_failed(policy, exc.error)
            return None
        except Declined as exc:
            if exc.result is None:
                self.warn(policy, exc.message)
            else:
                first = exc.message.splitlines()[0] if exc.message else "failed"
                self.warn(policy, f"cached outputs failed the step's validation ({first}); it runs")
            return None
        finally:
            executor.close()
        policy.store.event(
            ctx.run_id,
            EventKind.CACHE_HIT,
            spec.step_id,
            key=key.key,
            from_run=entry.run_id,
            saved_usd=saved,
            files=len(entry.files),
        )
        return StepOutcome(StepState.SUCCEEDED, note, tool, 0, origin="cache")

    def _fetch(self, entry: Entry, workdir: Path) -> None:
        """The entry's files into `workdir`, each checked against its hash as it comes."""
        try:
            for item in entry.files:
                target = workdir / item.path
                self.store.fetch_blob(item.sha256, target, item.size)
                with contextlib.suppress(OSError):
                    target.chmod(item.mode & 0o777)
        except DamagedEntry as exc:
            raise Declined(f"{exc}; treated as a miss, the step runs") from exc
        except CacheStoreError as exc:
            raise _Unreachable(exc) from exc
        except OSError as exc:
            raise Declined(f"outputs not restored ({exc}); the step runs") from exc

    # -- store -------------------------------------------------------------------------------
    def after_success(self, policy: StepPolicy, spec: AttemptSpec, result: AttemptResult) -> None:
        step = policy.spec
        mode = self.mode(step)
        if mode == CacheMode.OFF:
            return
        key = self.pending.pop(step.step_id, None)
        if key is None:
            return
        policy.store.cache.record_step_key(
            step.bundle_id, step.step_id, key.key, key.parts, spec.run_id
        )
        if result.outcome == AttemptOutcome.CACHED:
            return  # the entry it came from is the one stored
        if mode != CacheMode.ON or self.unreachable:
            return
        workdir = spec.project_root
        outputs = [workdir / p for p in step.create_files]
        if not all(p.is_file() and not p.is_symlink() for p in outputs):
            # folders are not stored (a hit must restore exactly what the step made), nor
            # symbolic links: storing would follow one to a file outside the project
            return
        try:
            total = sum(p.stat().st_size for p in outputs)
        except OSError:
            return
        if total > step.cache_max_bytes:
            self.warn(policy, f"outputs not stored: they {_too_big(total, step)}")
            return
        try:
            files = []
            for rel, path in zip(step.create_files, outputs, strict=True):
                digest = digest_file(path)
                self.store.put_blob(path, digest)
                files.append(EntryFile(rel, digest, path.stat().st_size, path.stat().st_mode))
            entry = Entry(
                key=key.key,
                parts=key.parts,
                bundle_id=step.bundle_id,
                step_id=step.step_id,
                tool=spec.tool,
                files=tuple(files),
                tool_version=self.keys.versions.get(spec.tool),
                model=result.model,
                cost_usd=result.cost_usd,
                tokens_in=result.tokens_in,
                tokens_out=result.tokens_out,
                cost_source=result.cost_source,
                duration_s=round(result.duration_s, 3),
                output_tail=result.output_tail[-4000:],
                run_id=spec.run_id,
                created=time.time(),
            )
            self.store.put_entry(entry)
            self.store.put_latest(step.bundle_id, step.step_id, key.key, key.parts)
        except CacheStoreError as exc:
            self._store_failed(policy, exc)
            return
        except OSError as exc:
            self.warn(policy, f"outputs not stored ({exc})")
            return
        policy.store.event(
            self.ctx.run_id,
            EventKind.CACHE_STORED,
            step.step_id,
            key=key.key,
            files=len(files),
            bytes=entry.size,
        )


def _too_big(size: int, spec: StepSpec) -> str:
    return (
        f"hold {_mib(size)}, over the step cache's max_bytes ({_mib(spec.cache_max_bytes)}); "
        "raise it with cache: {max_bytes: N} in the bundle to cache them"
    )


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


class _Unreachable(Declined):
    """The cache store failed while an entry was fetched: said once, the run goes on."""

    def __init__(self, error: CacheStoreError) -> None:
        super().__init__(error.message)
        self.error = error
