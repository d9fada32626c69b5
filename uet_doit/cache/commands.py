"""`uet cache stats | prune --older-than 30d | verify`: look after a step cache store."""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uet_doit.cache.entries import DamagedEntry, Entry
from uet_doit.cache.stores import STALE_TEMP_SECONDS, CacheStore, configured_store
from uet_doit.errors import EXIT_FAILED, EXIT_OK, UsageError
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


def _store(args: argparse.Namespace) -> CacheStore:
    root = Path.cwd()
    url = None if args.local else configured_store(root, args.store, dict(os.environ))
    return CacheStore.for_run(root, url)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _cmd_cache(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.action == "stats":
        data = stats(store)
        runs = RunStore(Path.cwd())
        count, saved = runs.cache.saved_by_cache() if runs.exists() else (0, 0.0)
        data.update({"cached_attempts_here": count, "saved_usd_here": round(saved, 6)})
        if args.json:
            print(json.dumps(data, indent=2))
            return EXIT_OK
        print(f"store {data['store']}")
        print(f"  {data['entries']} entries, {data['blobs']} blobs ({data['blob_bytes']} bytes)")
        print(f"  oldest {_when(data['oldest'])}, newest {_when(data['newest'])}")
        print(f"  this project: {count} cached attempt(s), saved ${saved:.4f}")
        return EXIT_OK
    if args.action == "prune":
        if args.older_than is None:
            raise UsageError("uet cache prune needs --older-than", "e.g. --older-than 30d")
        pruned = prune(store, parse_age(args.older_than))
        if args.json:
            print(json.dumps(pruned.__dict__, indent=2))
        else:
            print(
                f"removed {pruned.entries} entries, {pruned.blobs} unused blobs and "
                f"{pruned.temporaries} left-over temporary files ({pruned.freed_bytes} bytes); "
                f"{pruned.kept_entries} entries kept"
            )
        return EXIT_OK
    checked = verify(store, repair=args.repair)
    if args.json:
        print(json.dumps(checked.__dict__, indent=2))
    else:
        print(f"checked {checked.entries} entries and {checked.blobs_checked} blobs in {store}")
        for item in checked.damaged:
            print(f"  DAMAGED {item['key'][:16]}: {item['problem']}")
        if checked.damaged and not args.repair:
            print("runs treat these as misses; remove them with `uet cache verify --repair`")
        if checked.removed:
            print(f"removed {checked.removed} damaged entries")
    return EXIT_FAILED if checked.damaged and not args.repair else EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("cache", help="step cache store: stats, prune, verify")
    p.add_argument("action", choices=("stats", "prune", "verify"))
    p.add_argument("--older-than", metavar="AGE", help="prune: e.g. 30d, 12h, 2w")
    p.add_argument("--repair", action="store_true", help="verify: remove damaged entries")
    p.add_argument("--store", metavar="URL", help="default: as `uet run` (else .uet/cache)")
    p.add_argument("--local", action="store_true", help="the project's .uet/cache only")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_cache)
