"""`uet why STEP`: why a step would run or not, in doit's terms and the cache's.

For a step that would run: what doit saw (an input changed, an output missing, the
definition changed) and which parts of its cache key changed since its last success here,
or why it is not cached. For one that would not: the doit record or the cache entry that
makes it up to date. `--dry-run` asks the same per step (`cache_verdicts`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uet_doit.bundle.graph import build_graph
from uet_doit.bundle.loader import load_bundle
from uet_doit.bundle.model import Bundle, Step, Workstream
from uet_doit.cache.entries import DamagedEntry, Entry
from uet_doit.cache.settings import CacheMode, RunCacheFlag, step_mode
from uet_doit.cache.stores import CacheStore, configured_store
from uet_doit.errors import CacheStoreError, UetError, UsageError
from uet_doit.run.doit.compiler import NoActions, build_spec, compile_tasks, step_outputs
from uet_doit.run.doit.loader import DEP_FILE
from uet_doit.run.forecast.budgets import budget_checks
from uet_doit.run.forecast.estimate import total
from uet_doit.run.step_cache.keys import StepKey, changes
from uet_doit.run.step_cache.lookup import KeyMaker
from uet_doit.run.step_spec import StepSpec
from uet_doit.state.doit_backend import DurableSqliteDB
from uet_doit.state.store import RunStore
from uet_doit.tools.routing import AdapterRegistry, default_known_tools

DOIT_REASONS = {
    "missing_target": "its output {} is missing",
    "changed_file_dep": "its input {} changed since doit recorded it",
    "added_file_dep": "{} is a new input",
    "removed_file_dep": "{} is no longer an input",
    "missing_file_dep": "its input {} does not exist",
    "has_no_dependencies": "it has no inputs or definition doit can check",
    "checker_changed": "doit's file checker changed",
}


def doit_reasons(bundle: Bundle, root: Path) -> dict[str, tuple[str, list[str]]]:
    """step_id -> (doit's status, its reasons in words), without running anything."""
    from doit.dependency import Dependency, JSONCodec, MD5Checker
    from doit.loader import generate_tasks

    dicts = list(compile_tasks(bundle, root, NoActions(), is_dir=lambda p: (root / p).is_dir()))
    tasks = generate_tasks(bundle.task_basename, (d for d in dicts))
    by_name = {t.name: t for t in tasks}
    dep = Dependency(
        DurableSqliteDB, str(root / DEP_FILE), checker_cls=MD5Checker, codec_cls=JSONCodec
    )
    out: dict[str, tuple[str, list[str]]] = {}
    try:
        for task in tasks:
            if "uet" not in (task.meta or {}):
                continue
            step_id = task.name.split(":", 1)[1]
            try:
                status = dep.get_status(task, by_name, get_log=True)
            except Exception as exc:
                out[step_id] = ("error", [f"doit cannot judge it: {exc}"])
                continue
            words: list[str] = []
            for reason, value in status.reasons.items():
                if reason == "uptodate_false":
                    words.append("its definition changed, or it has not succeeded here yet")
                    continue
                template = DOIT_REASONS.get(reason, reason.replace("_", " ") + ": {}")
                values = value if isinstance(value, list) else [value]
                named = [v for v in values if v is not True]
                words.extend(template.format(v) for v in named)
                if not named:
                    words.append(template.format("").rstrip(": "))
            out[step_id] = (status.status, words)
    finally:
        dep.close()
    return out


def find_step(bundle: Bundle, step_id: str) -> tuple[Workstream, Step]:
    for ws, step in bundle.steps():
        if step.step_id == step_id:
            return ws, step
    import difflib

    ids = [s.step_id for _, s in bundle.steps()]
    close = difflib.get_close_matches(step_id, ids, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "list the steps with `uet list BUNDLE`"
    raise UsageError(f"no step {step_id!r} in bundle {bundle.bundle_id}", hint)


@dataclass
class CacheLook:
    mode: CacheMode
    why: str
    key: StepKey | None = None
    entry: Entry | None = None
    problem: str | None = None  # unreachable store, damaged entry

    @property
    def hit(self) -> bool:
        return self.entry is not None


def look_up(
    spec: StepSpec,
    keys: KeyMaker,
    store: CacheStore,
    flag: str,
    store_configured: bool,
    file_hash: Callable[[str], str] | None = None,
) -> CacheLook:
    mode, why = step_mode(spec.tool, spec.cache_mode, flag, store_configured)
    if mode == CacheMode.OFF:
        return CacheLook(mode, why)
    try:
        key = keys.key(spec, file_hash)
    except UetError as exc:
        return CacheLook(mode, why, problem=exc.message)
    try:
        entry = store.get_entry(key.key)
    except (DamagedEntry, CacheStoreError) as exc:
        return CacheLook(mode, why, key, problem=str(exc))
    if entry is not None and entry.size > spec.cache_max_bytes:  # a run would not restore it
        problem = f"miss: the entry holds {entry.size} bytes, over the step's cache max_bytes"
        return CacheLook(mode, why, key, problem=problem)
    return CacheLook(mode, why, key, entry)


def explain(
    bundle: Bundle, root: Path, step_id: str, flag: str, store_url: str | None
) -> dict[str, Any]:
    ws, step = find_step(bundle, step_id)
    spec = build_spec(bundle, ws, step, root)
    status, reasons = doit_reasons(bundle, root).get(step_id, ("run", []))
    keys = KeyMaker(root, AdapterRegistry(root))
    store = CacheStore.for_run(root, store_url)
    look = look_up(spec, keys, store, flag, store_url is not None)
    runs = RunStore(root)
    last = runs.cache.step_key(bundle.bundle_id, step_id) if runs.exists() else None
    latest = runs.latest_attempt(bundle.bundle_id, step_id) if runs.exists() else None
    before: dict[str, str] | None = last.parts if last is not None else None
    last_success = (
        {"run_id": last.run_id, "recorded": last.recorded, "key": last.cache_key, "where": "here"}
        if last is not None
        else None
    )
    if before is None and look.mode != CacheMode.OFF:
        try:  # a fresh clone: compare with what the step last stored in the shared store
            shared = store.get_latest(bundle.bundle_id, step_id)
        except CacheStoreError:
            shared = None
        if shared is not None:
            before = dict(shared["parts"])
            last_success = {
                "run_id": None,
                "recorded": shared.get("written"),
                "key": shared["key"],
                "where": str(store),
            }
    key_changes = None
    if before is not None and look.key is not None:
        key_changes = [c.to_dict() for c in changes(before, look.key.parts)]
    would_run = status != "up-to-date" and not look.hit
    report: dict[str, Any] = {
        "step_id": step_id,
        "bundle_id": bundle.bundle_id,
        "tool": spec.tool,
        "would_run": would_run,
        "doit": {"status": status, "reasons": reasons},
        "cache": {
            "mode": str(look.mode),
            "why": look.why,
            "store": str(store),
            "key": look.key.key if look.key else None,
            "hit": look.hit,
            "problem": look.problem,
            "entry": _entry_facts(look.entry),
        },
        "last_success": last_success,
        "key_changes": key_changes,
        "doit_record": (
            {"run_id": latest.run_id, "outcome": str(latest.outcome), "ended": latest.ended}
            if latest is not None
            else None
        ),
    }
    report["verdict"] = _verdict(report)
    return report


def _entry_facts(entry: Entry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {
        "run_id": entry.run_id,
        "created": entry.created,
        "tool": entry.tool,
        "tool_version": entry.tool_version,
        "model": entry.model,
        "cost_usd": entry.cost_usd,
        "files": [f.path for f in entry.files],
    }


def _verdict(r: dict[str, Any]) -> str:
    cache, step = r["cache"], r["step_id"]
    if r["doit"]["status"] == "up-to-date":
        rec = r["doit_record"]
        made = f" (last done by run {rec['run_id']})" if rec else ""
        line = f"{step} would not run: doit's record in .doit.db says it is up to date{made}"
        drift = [f"{c['what']} {c['change']}" for c in r["key_changes"] or ()]
        if drift:
            line += (
                f"\nnote: its cache key moved since the last success ({'; '.join(drift)}); "
                "doit does not track that, so a new entry is made only when doit runs it"
            )
        return line
    if cache["hit"]:
        entry = cache["entry"]
        return (
            f"{step} would not run its tool: cache entry {cache['key'][:12]} in {cache['store']} "
            f"(made by run {entry['run_id']}) restores it, saving ${entry['cost_usd'] or 0:.4f}"
        )
    lines = [f"{step} would run: " + ("; ".join(r["doit"]["reasons"]) or "doit says so")]
    if cache["mode"] == CacheMode.OFF:
        lines.append(f"not cached: {cache['why']}")
    elif cache["problem"]:
        lines.append(f"cache miss: {cache['problem']}")
    elif r["key_changes"]:
        where = r["last_success"]["where"]
        since = "the last success" + ("" if where == "here" else f" stored in {where}")
        for change in r["key_changes"]:
            lines.append(f"cache miss: {change['what']} {change['change']} since {since}")
    elif r["last_success"] is None:
        lines.append("cache miss: no entry for its key (it has not succeeded here with the cache)")
    else:
        lines.append("cache miss: its key is unchanged but the store has no entry for it")
    return "\n".join(lines)


@dataclass(frozen=True)
class DryRunVerdict:
    hit: bool
    saves_usd: float = 0.0
    note: str = ""


def cache_verdicts(
    bundle: Bundle,
    root: Path,
    would_run: set[str],
    flag: str = RunCacheFlag.DEFAULT,
    store_flag: str | None = None,
) -> dict[str, DryRunVerdict]:
    """For `uet run --dry-run`: each step that would run, hit or miss. A hit upstream is
    played forward (its entry's file hashes stand for its outputs); a miss upstream makes
    the steps after it unknowable until it has run."""
    if flag == RunCacheFlag.OFF:
        return {}
    url = configured_store(root, store_flag, dict(os.environ))
    keys = KeyMaker(root, AdapterRegistry(root))
    store = CacheStore.for_run(root, url)
    outputs = step_outputs(bundle)
    planned: dict[str, str] = {}  # output path -> the hash a hit would restore
    pending: set[str] = set()  # outputs of steps that would really run
    found: dict[str, DryRunVerdict] = {}

    def file_hash(path: str) -> str:
        return planned.get(path) or keys.hasher(path)

    for ws, step in _in_order(bundle):
        if step.step_id not in would_run:
            continue
        spec = build_spec(bundle, ws, step, root, outputs=outputs)
        mode, _why = step_mode(spec.tool, spec.cache_mode, flag, url is not None)
        if mode == CacheMode.OFF:
            found[step.step_id] = DryRunVerdict(False, note="not cached")
            pending.update(spec.create_files)
            continue
        blocked = [p for p in (*spec.files, *spec.upstream_outputs) if p in pending]
        if blocked:
            found[step.step_id] = DryRunVerdict(False, note=f"miss: waits for {blocked[0]}")
            pending.update(spec.create_files)
            continue
        look = look_up(spec, keys, store, flag, url is not None, file_hash)
        if look.entry is not None:
            planned.update({f.path: f.sha256 for f in look.entry.files})
            cost = look.entry.cost_usd or 0.0
            found[step.step_id] = DryRunVerdict(True, cost, f"cache hit, saves ${cost:.4f}")
            continue
        pending.update(spec.create_files)
        note = "not cached" if look.mode == CacheMode.OFF else "cache miss"
        found[step.step_id] = DryRunVerdict(False, note=look.problem or note)
    return found


def _in_order(bundle: Bundle) -> list[tuple[Workstream, Step]]:
    """Steps with each after the steps it depends on (the bundle was checked for cycles)."""
    by_id = {s.step_id: (ws, s) for ws, s in bundle.steps()}
    return [by_id[n] for n in build_graph(bundle).order() if n in by_id]


def _bundle_for(root: Path, given: str | None) -> tuple[Bundle, Path]:
    if given:
        return load_bundle(Path(given), root, known_tools=default_known_tools()), Path(given)
    store = RunStore(root)
    run_id = store.latest_run_id() if store.exists() else None
    row = store.run(run_id) if run_id else None
    if row is None or not row.bundle_file:
        msg = "no bundle given and no run recorded here to take it from"
        raise UsageError(msg, "name it: uet why STEP --bundle FILE")
    return load_bundle(Path(row.bundle_file), root, known_tools=default_known_tools()), Path(
        row.bundle_file
    )


def why(
    root: Path, step_id: str, bundle_file: str | None, store_url: str | None, cache: bool
) -> dict[str, Any]:
    """`uet why STEP`: `explain` for the step of `bundle_file` (default: the latest run's
    bundle), against the store `uet run` would use (`store_url`, as --cache-store), with
    --cache (`cache`) or without it."""
    bundle, _path = _bundle_for(root, bundle_file)
    url = configured_store(root, store_url, dict(os.environ))
    flag = RunCacheFlag.ON if cache else RunCacheFlag.DEFAULT
    return explain(bundle, root, step_id, flag, url)


@dataclass(frozen=True)
class CacheForecast:
    """What `--dry-run` says of the step cache: the steps it looked up (hit or miss), or
    why the store could not be asked."""

    looked: dict[str, DryRunVerdict] = field(default_factory=dict)
    warning: str | None = None

    @property
    def hits(self) -> dict[str, DryRunVerdict]:
        return {k: v for k, v in self.looked.items() if v.hit}


def apply_cache_to_forecast(
    bundle: Bundle, root: Path, data: dict[str, Any], flag: str, store_flag: str | None
) -> CacheForecast:
    """`--dry-run`'s step cache part: a step whose entry is there would not run, so it
    leaves the forecast (and the budgets under it); returns the hits, what each saves, and
    the misses. A store that cannot be reached is a warning."""

    states: dict[str, str] = data["states"]
    would = {step_id for step_id, state in states.items() if state == "would run"}
    if not would or flag == RunCacheFlag.OFF:
        return CacheForecast()
    try:
        verdicts = cache_verdicts(bundle, root, would, flag, store_flag)
    except UetError as exc:
        return CacheForecast(warning=f"step cache: {exc.message}")
    hits = {k: v for k, v in verdicts.items() if v.hit}
    for step_id in hits:
        states[step_id] = "cache hit"
        data["forecasts"].pop(step_id, None)
    if hits:
        data["low_usd"], data["high_usd"] = total(data["forecasts"].values())
        data["budgets"] = budget_checks(bundle, RunStore(root), data["forecasts"])
    return CacheForecast({k: v for k, v in verdicts.items() if v.note != "not cached"})
