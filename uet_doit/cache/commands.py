"""Looking after a step cache store: its figures, pruning old entries, verifying every entry
and blob (`uet cache stats | prune --older-than 30d | verify`, in cli/cache_cmds.py)."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uet_doit.cache.entries import DamagedEntry, Entry
from uet_doit.cache.stores import STALE_TEMP_SECONDS, CacheStore, configured_store
from uet_doit.errors import UsageError
from uet_doit.state.store import RunStore

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """`30d`, `12h`, `90m`, `2w`, `45s`, or a bare number of days -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if match is None:
        msg = f"--older-than {text!r}: not an age"
        raise UsageError(msg, "write it as a number and a unit: 30d, 12h, 90m, 2w")
    return float(match.group(1)) * _UNITS[match.group(2) or "d"]


def stats(store: CacheStore) -> dict[str, Any]:
    entries = list(store.entries())
    blobs = list(store.blobs())
    return {
        "store": str(store),
        "entries": len(entries),
        "entry_bytes": sum(e.size for e in entries),
        "blobs": len(blobs),
        "blob_bytes": sum(b[3] for b in blobs),
        "oldest": min((e.modified for e in entries), default=None),
        "newest": max((e.modified for e in entries), default=None),
    }


@dataclass
class PruneReport:
    entries: int = 0
    blobs: int = 0
    temporaries: int = 0
    freed_bytes: int = 0
    kept_entries: int = 0


def prune(store: CacheStore, older_than: float, now: float | None = None) -> PruneReport:
    """Entries older than the age go, then blobs no entry names (past the time a writer
    needs between its blobs and its entry), then temporaries a killed writer left."""
    now = time.time() if now is None else now
    report = PruneReport()
    named: set[str] = set()
    for stored in store.entries():
        if now - stored.modified > older_than:
            store.remove(stored.path)
            report.entries += 1
            report.freed_bytes += stored.size
            continue
        report.kept_entries += 1
        try:
            entry = store.get_entry(stored.key)
        except DamagedEntry:
            continue  # its blobs may go; `uet cache verify --repair` removes it
        if entry is not None:
            named.update(f.sha256 for f in entry.files)
    for digest, path, modified, size in store.blobs():
        if digest not in named and now - modified > STALE_TEMP_SECONDS:
            store.remove(path)
            report.blobs += 1
            report.freed_bytes += size
    for path, modified in store.temporaries():
        if now - modified > STALE_TEMP_SECONDS:
            store.remove(path)
            report.temporaries += 1
    return report


@dataclass
class VerifyReport:
    entries: int = 0
    blobs_checked: int = 0
    damaged: list[dict[str, str]] = field(default_factory=list)
    removed: int = 0


def verify(store: CacheStore, repair: bool = False) -> VerifyReport:
    """Every entry against its hash, every blob it names against its name."""
    report = VerifyReport()
    for stored in store.entries():
        report.entries += 1
        problem: str | None = None
        try:
            entry: Entry | None = store.get_entry(stored.key)
        except DamagedEntry as exc:
            problem, entry = str(exc), None
        for item in entry.files if entry else ():
            report.blobs_checked += 1
            wrong = store.blob_problem(item.sha256, item.size)
            if wrong is not None:
                problem = f"blob {item.sha256[:12]} of {item.path} {wrong}"
        if problem is None:
            continue
        report.damaged.append({"key": stored.key, "problem": problem})
        if repair:
            store.remove(stored.path)
            report.removed += 1
    return report


def open_store(root: Path, url: str | None, local: bool = False) -> CacheStore:
    """The store `uet cache` looks after: `url`, else the one `uet run` would use (config,
    $UET_CACHE_STORE); `local` is the project's .uet/cache whatever is configured."""
    configured = None if local else configured_store(root, url, dict(os.environ))
    return CacheStore.for_run(root, configured)


def project_stats(store: CacheStore, root: Path) -> tuple[dict[str, Any], float]:
    """`stats` with what the cache saved this project's runs (`uet cache stats`), and that
    saving unrounded (the text rounds it its own way)."""
    data = stats(store)
    runs = RunStore(root)
    count, saved = runs.cache.saved_by_cache() if runs.exists() else (0, 0.0)
    data.update({"cached_attempts_here": count, "saved_usd_here": round(saved, 6)})
    return data, saved
