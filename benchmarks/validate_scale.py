"""How `uet validate` grows with the number of workstreams: N one-step workstreams (the
shape that used to be quadratic), valid, with every step id duplicated (each one a
problem the CLI locates by line) and with no step ids (each a schema problem). Each run is
a fresh `uet validate` process.

    python benchmarks/validate_scale.py                    # 10k, 50k, 100k
    python benchmarks/validate_scale.py --sizes 1000 5000 --no-errors
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def bundle_dict(n: int, *, duplicate_ids: bool = False, no_ids: bool = False) -> dict[str, object]:
    """N workstreams of one shell step each; with `duplicate_ids` every step is `s`, with
    `no_ids` no step has one (a schema problem each: the bad parts are dropped, the rest
    checked)."""
    data: dict[str, object] = {
        "bundle_id": "scale",
        "workstreams": [
            {
                "ws_id": f"w{i:06d}",
                "steps": [
                    {
                        "step_id": "s" if duplicate_ids else f"s{i:06d}",
                        "tool": "shell",
                        "command": ["true"],
                        "create_files": [f"out/{i}.txt"],
                    }
                ],
            }
            for i in range(n)
        ],
    }
    if no_ids:
        for ws in data["workstreams"]:  # type: ignore[attr-defined]
            del ws["steps"][0]["step_id"]
    return data


def measure(path: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and exit code of one `uet validate` of `path`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "uet_doit.cli.main", "validate", path.name],
        cwd=path.parent,
        capture_output=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument(
        "--no-errors", action="store_true", help="skip the all-duplicate-ids bundles"
    )
    args = parser.parse_args(argv)
    shapes = [("valid", {})]
    if not args.no_errors:
        shapes += [("duplicate ids", {"duplicate_ids": True}), ("no step ids", {"no_ids": True})]
    print(
        f"{'bundle':<14} {'workstreams':>11} {'MB':>6} {'wall s':>7} {'cpu s':>7} {'us/ws':>6} exit"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for label, shape in shapes:
            for n in args.sizes:
                path = Path(tmp) / f"b{n}.json"
                path.write_text(json.dumps(bundle_dict(n, **shape), indent=1))
                mb = path.stat().st_size / 1e6
                wall, cpu, code = measure(path)
                print(
                    f"{label:<14} {n:>11,} {mb:>6.1f} {wall:>7.2f} {cpu:>7.2f} "
                    f"{cpu / n * 1e6:>6.0f} {code}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
