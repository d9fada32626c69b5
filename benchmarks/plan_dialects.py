"""Convert every plan file given (or found under the folders given) and print, per file, the
dialect it was read as, its workstreams, steps, dependency edges, steps kept as done, and
whether `uet validate` accepts the bundle. For checking the readers on real plans:

    python benchmarks/plan_dialects.py path/to/plans/ more/tasks.md
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from uet_doit.errors import UetError
from uet_doit.plans.dialect_convert import convert_dialect, pick, read_text

NAMES = ("tasks.md", "tasks.json", "issues.jsonl", "plan.md", "IMPLEMENTATION_PLAN.md")


def _files(args: list[str]) -> list[Path]:
    out: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and (
                p.name in NAMES or p.name.endswith((".plan.md", ".story.md"))))  # fmt: skip
        else:
            out.append(path)
    return out


def main(args: list[str]) -> int:
    rows = 0
    bad = 0
    start = time.perf_counter()
    print(f"{'dialect':<12} {'ws':>4} {'steps':>5} {'edges':>5} {'done':>5}  file")
    for path in _files(args):
        rows += 1
        try:
            if pick(path, read_text(path), None) is None:
                print(f"{'(markdown)':<12} {'':>4} {'':>5} {'':>5} {'':>5}  {path}")
                continue
            done = convert_dialect(path)
        except UetError as exc:
            bad += 1
            print(f"{'INVALID':<12} {'':>4} {'':>5} {'':>5} {'':>5}  {path}: {exc}")
            continue
        wss = done.bundle["workstreams"]
        steps = [s for ws in wss for s in ws["steps"]]
        edges = sum(len(s.get("depends_on", [])) for s in steps)
        edges += sum(len(ws.get("depends_on", [])) for ws in wss)
        skipped = sum(1 for s in steps if s.get("skip"))
        name = done.detected.name
        print(f"{name:<12} {len(wss):>4} {len(steps):>5} {edges:>5} {skipped:>5}  {path}")
    took = time.perf_counter() - start
    print(f"{rows} file(s), {bad} not converted, {took:.2f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
