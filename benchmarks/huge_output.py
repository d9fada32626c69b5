"""Peak memory of a step that writes a huge output (issue 23, item 2).

A shell step makes a sparse file of --gb gigabytes. Each phase is a fresh `uet` child,
measured by its wall time and its peak RSS (`wait4`'s `ru_maxrss`, git and the step's own
command excluded since they are grandchildren):

- default: the output is over the step cache's default `max_bytes` (1 GiB): the run hashes
  it for its fingerprint and says it is not stored;
- store: `cache: {max_bytes: 4 GiB}`: hashed and copied into the local store;
- restore: outputs and doit's record gone: the blob is copied back and checked;
- verify: `uet cache verify --local` re-hashes the blob.

Memory must not grow with the output (before streaming, each phase read it whole: a 2 GB
output needed over 2 GB of RSS and died under a container's memory cap).

    python benchmarks/huge_output.py            # 2 GB
    python benchmarks/huge_output.py --gb 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def bundle(size: int, cache: dict[str, Any]) -> dict[str, Any]:
    make = (
        f"import os; os.makedirs('out', exist_ok=True); open('out/big.bin', 'wb').truncate({size})"
    )
    step = {
        "step_id": "big",
        "tool_profile_id": "shell",
        "command": [sys.executable, "-c", make],
        "create_files": ["out/big.bin"],
        "cache": cache,
    }
    return {"bundle_id": "huge", "workstreams": [{"ws_id": "W", "steps": [step]}]}


def measure(root: Path, *args: str) -> dict[str, Any]:
    """One `uet` child: seconds, its own peak RSS in MB, exit code, last line of output."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uet_doit", *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output = proc.stdout.read().decode("utf-8", "replace")
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [ln for ln in output.splitlines() if ln.strip()]
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit": proc.returncode,
        "said": next((ln for ln in lines if "not stored" in ln), lines[-1] if lines else ""),
    }


def forget(root: Path) -> None:
    (root / "out" / "big.bin").unlink(missing_ok=True)
    for db in root.glob(".doit.db*"):
        db.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="output size (default 2)")
    args = parser.parse_args()
    size = int(args.gb * (1 << 30))
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="uet-huge-") as tmp:
        root = Path(tmp)
        run = ("run", "bundle.json", "--reporter", "plain")
        (root / "bundle.json").write_text(json.dumps(bundle(size, {"mode": True})))
        rows["default (not cached)"] = measure(root, *run)
        shutil.rmtree(root / ".uet", ignore_errors=True)
        forget(root)
        stored = {"mode": True, "max_bytes": 4 << 30}
        (root / "bundle.json").write_text(json.dumps(bundle(size, stored)))
        rows["store"] = measure(root, *run)
        forget(root)
        rows["restore"] = measure(root, *run)
        rows["verify"] = measure(root, "cache", "verify", "--local")
    print(f"output: {size / (1 << 30):.2f} GiB sparse file")
    print(f"{'phase':<22} {'seconds':>8} {'peak RSS MB':>12} {'exit':>5}  said")
    for name, row in rows.items():
        said = row["said"][:70]
        print(f"{name:<22} {row['seconds']:>8} {row['peak_rss_mb']:>12} {row['exit']:>5}  {said}")
    return 0 if all(r["exit"] == 0 for r in rows.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
