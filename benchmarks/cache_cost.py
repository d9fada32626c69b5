"""What the step cache costs per step against a folder store: a lookup (key: hash the
inputs, read the entry), a store (hash and copy the outputs, write the entry) and a hit
(read the entry, verify and put the files in place); then whole `uet run`s of N shell
steps without the cache, with it (storing), and in a fresh clone (all hits).

    python benchmarks/cache_cost.py                # 300 steps, 4 KiB and 1 MiB files
    python benchmarks/cache_cost.py --steps 1000 --sizes 1024 65536 --no-runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from uet_doit.bundle.model import Bundle
from uet_doit.cache.blobs import digest_file
from uet_doit.cache.entries import Entry, EntryFile
from uet_doit.cache.stores import CacheStore
from uet_doit.run.doit.compiler import build_spec
from uet_doit.run.step_cache.lookup import KeyMaker
from uet_doit.tools.routing import AdapterRegistry


def bundle_dict(steps: int) -> dict[str, object]:
    return {
        "bundle_id": "bench-cache",
        "cache": True,
        "workstreams": [
            {
                "ws_id": "W",
                "steps": [
                    {
                        "step_id": f"s{i:05d}",
                        "tool": "shell",
                        "command": ["cp", f"in/{i:05d}", f"out/{i:05d}"],
                        "files": [f"in/{i:05d}"],
                        "create_files": [f"out/{i:05d}"],
                    }
                    for i in range(steps)
                ],
            }
        ],
    }


def project(root: Path, steps: int, size: int) -> Bundle:
    (root / "in").mkdir(parents=True)
    (root / "out").mkdir()
    for i in range(steps):
        (root / "in" / f"{i:05d}").write_bytes(os.urandom(size))
    data = bundle_dict(steps)
    (root / "bundle.yaml").write_text(yaml.safe_dump(data))
    return Bundle.model_validate(data)


def per_step_costs(steps: int, size: int) -> dict[str, float]:
    """Microseconds per step of each phase, through the library (no process started)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p"
        bundle = project(root, steps, size)
        store = CacheStore(str(Path(tmp) / "store"))
        keys = KeyMaker(root, AdapterRegistry(root))
        specs = [build_spec(bundle, ws, s, root) for ws, s in bundle.steps()]
        for spec in specs:  # what the tools would have made
            shutil.copyfile(root / spec.files[0], root / spec.create_files[0])
        times: dict[str, list[float]] = {"lookup (miss)": [], "store": [], "hit": []}
        made = []
        for spec in specs:
            t0 = time.perf_counter()
            key = keys.key(spec)
            assert store.get_entry(key.key) is None
            t1 = time.perf_counter()
            out = root / spec.create_files[0]
            digest = digest_file(out)
            store.put_blob(out, digest)
            store.put_entry(
                Entry(
                    key.key,
                    key.parts,
                    spec.bundle_id,
                    spec.step_id,
                    "shell",
                    (EntryFile(spec.create_files[0], digest, size),),
                    cost_usd=0.01,
                    created=time.time(),
                )
            )
            t2 = time.perf_counter()
            times["lookup (miss)"].append(t1 - t0)
            times["store"].append(t2 - t1)
            made.append(key)
        clone = KeyMaker(root, AdapterRegistry(root))  # a new run: nothing remembered
        for spec in specs:
            (root / spec.create_files[0]).unlink()
        for spec in specs:
            t0 = time.perf_counter()
            entry = store.get_entry(clone.key(spec).key)
            assert entry is not None
            for item in entry.files:
                store.fetch_blob(item.sha256, root / item.path, item.size)
            times["hit"].append(time.perf_counter() - t0)
        return {k: statistics.median(v) * 1e6 for k, v in times.items()}


def uet(root: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "uet_doit", "run", "bundle.yaml", "--reporter", "plain", *args],
        cwd=root,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def whole_runs(steps: int, size: int) -> dict[str, float]:
    """Seconds of whole `uet run`s: no cache, storing every step, a fresh clone of hits."""
    with tempfile.TemporaryDirectory() as tmp:
        plain, first, clone = Path(tmp) / "plain", Path(tmp) / "first", Path(tmp) / "clone"
        for root in (plain, first):
            project(root, steps, size)
        shutil.copytree(first / "in", clone / "in")
        (clone / "out").mkdir()
        shutil.copy(first / "bundle.yaml", clone / "bundle.yaml")
        store = str(Path(tmp) / "store")
        return {
            "run, no cache": uet(plain, "--no-cache"),
            "run, storing": uet(first, "--cache-store", store),
            "fresh clone, all hits": uet(clone, "--cache-store", store),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 1 << 20])
    parser.add_argument("--no-runs", action="store_true", help="library figures only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        row: dict[str, object] = {"steps": args.steps, "file_bytes": size}
        row.update(
            {f"{k} us/step": round(v, 1) for k, v in per_step_costs(args.steps, size).items()}
        )
        if not args.no_runs:
            row.update({f"{k} s": round(v, 2) for k, v in whole_runs(args.steps, size).items()})
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['steps']} steps, one {row['file_bytes']}-byte input and output each:")
        for name, value in row.items():
            if name not in ("steps", "file_bytes"):
                print(f"  {name:<34} {value}")


if __name__ == "__main__":
    main()
