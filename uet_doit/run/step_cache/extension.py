"""The step cache as a step extension: look up before a step, store after its success.

A hit puts the entry's files in the attempt's working directory (the policy's, so an
isolated workspace gets them like any attempt's output), runs the step's validation on
them, and records an attempt with outcome `cached`, cost 0 and the original cost as saved.
Nothing the cache does can fail a step: a store that cannot be reached, or an entry that
fails its hash, is a warning and the step runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from uet_doit.cache.blobs import digest_file
from uet_doit.cache.entries import DamagedEntry, Entry, EntryFile
from uet_doit.cache.settings import CacheMode, RunCacheFlag, step_mode
from uet_doit.cache.stores import CacheStore
from uet_doit.errors import CacheStoreError, UetError
from uet_doit.run.context import RunContext
from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec, child_env, complete_attempt
from uet_doit.run.extensions import StepExtension, StepOutcome, StepPolicy
from uet_doit.run.step_cache.keys import StepKey
from uet_doit.run.step_cache.lookup import KeyMaker
from uet_doit.run.step_spec import StepSpec, fingerprint
from uet_doit.state.records import AttemptOutcome, EventKind, StepState
from uet_doit.tools.adapters.base import ToolResult
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
        from uet_doit.run.executors.attempt import worker_name

        spec, ctx, store = policy.spec, self.ctx, policy.store
        attempt_no = store.max_attempt(ctx.run_id, spec.step_id) + 1
        tool = entry.tool if spec.tool == "auto" else spec.tool
        aspec = policy.attempt_spec(tool, attempt_no, spec.instruction)
        for extension in policy.extensions:
            if extension is not self:
                aspec = extension.prepare_attempt(policy, aspec)
        workdir = Path(aspec.workdir)
        before = _set_aside(workdir, entry.files)
        try:
            for item in entry.files:
                target = workdir / item.path
                self.store.fetch_blob(item.sha256, target, item.size)
                with contextlib.suppress(OSError):
                    target.chmod(item.mode & 0o777)
            result = self._judge(policy, aspec, entry)
        except DamagedEntry as exc:
            _put_back(before)
            self.warn(policy, f"{exc}; treated as a miss, the step runs")
            return None
        except CacheStoreError as exc:
            _put_back(before)
            self._store_failed(policy, exc)
            return None
        except OSError as exc:
            _put_back(before)
            self.warn(policy, f"outputs not restored ({exc}); the step runs")
            return None
        if not result.success:
            _put_back(before)
            first = result.message.splitlines()[0] if result.message else "failed"
            self.warn(policy, f"cached outputs failed the step's validation ({first}); it runs")
            return None
        _drop(before)
        attempt_id = policy.begin(aspec, AttemptOutcome.CACHED)
        saved = entry.cost_usd or 0.0
        note = f"from the cache (entry {key.key[:12]} of run {entry.run_id}, saved ${saved:.4f})"
        store.finish_attempt(
            attempt_id,
            AttemptOutcome.CACHED,
            exit_code=0,
            message=note,
            cost_usd=0.0,
            tokens_in=0,
            tokens_out=0,
            model=entry.model,
            cost_source="cache",
            signature=spec.signature,
            fingerprint=fingerprint(policy.root, spec.paths),
            worker=worker_name(),
            saved_usd=entry.cost_usd,
            cache_key=key.key,
        )
        store.cache.record_step_key(spec.bundle_id, spec.step_id, key.key, key.parts, ctx.run_id)
        store.event(
            ctx.run_id,
            EventKind.CACHE_HIT,
            spec.step_id,
            key=key.key,
            from_run=entry.run_id,
            saved_usd=saved,
            files=len(entry.files),
        )
        policy.state(StepState.SUCCEEDED, note, tool)
        return StepOutcome(StepState.SUCCEEDED, note, tool, 0, origin="cache")

    def _judge(self, policy: StepPolicy, aspec: AttemptSpec, entry: Entry) -> AttemptResult:
        """The restored files go through the attempt pipeline (outputs, validation) and the
        other extensions' judgement (e.g. landing a workspace), like a tool's would."""
        logs = Path(aspec.stdout_path)
        logs.parent.mkdir(parents=True, exist_ok=True)
        logs.write_text(
            f"[restored from the step cache: entry {entry.key[:12]}, made by run "
            f"{entry.run_id} with {entry.tool} {entry.tool_version or ''}]\n{entry.output_tail}",
            encoding="utf-8",
        )
        raw = ToolResult(success=True, exit_code=0, model=entry.model, cost_source="cache")
        result = complete_attempt(aspec, raw, child_env(aspec), 0.0)
        for extension in policy.extensions:
            if extension is not self:
                result = extension.conclude_attempt(policy, aspec, result)
        return result

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
        if mode != CacheMode.ON or self.unreachable:
            return
        workdir = Path(spec.workdir)
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


def _set_aside(workdir: Path, files: tuple[EntryFile, ...]) -> dict[Path, Path | None]:
    """What the restored files replace, renamed out of the way (never read: an output may be
    gigabytes), to put back if the entry turns out unusable."""
    kept: dict[Path, Path | None] = {}
    for item in files:
        path = workdir / item.path
        aside = path.with_name(f".{path.name}.uet-kept-{os.getpid()}-{threading.get_ident()}")
        try:
            os.replace(path, aside)
        except OSError:
            kept[path] = None
        else:
            kept[path] = aside
    return kept


def _put_back(kept: dict[Path, Path | None]) -> None:
    for path, aside in kept.items():
        with contextlib.suppress(OSError):
            if aside is None:
                path.unlink(missing_ok=True)
            else:
                os.replace(aside, path)


def _drop(kept: dict[Path, Path | None]) -> None:
    for aside in kept.values():
        if aside is not None:
            with contextlib.suppress(OSError):
                aside.unlink()
