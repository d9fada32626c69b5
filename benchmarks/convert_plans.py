"""How long `uet convert` takes: each real plan, and generated plans of growing size.

    python benchmarks/convert_plans.py [--repeat N]

In process (no interpreter start-up): the median of N conversions of each plan in
tests/fixtures/plans/, then generated `## Phase N` plans with tasks and deliverables, to see
that the time grows with the plan's size and not faster.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from uet_doit.plans.convert import convert_plan

PLANS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "plans"


def generated(phases: int, tasks: int) -> str:
    parts = ["# Generated plan\n"]
    for p in range(phases):
        parts.append(f"## Phase {p:02d} — Part {p}\n\n### Tasks\n")
        parts += [f"{t + 1}. **Task {p}.{t}** writes `src/p{p}/t{t}.py`\n" for t in range(tasks)]
        parts.append("\n### Deliverables\n")
        parts += [f"- [ ] `src/p{p}/t{t}.py` module {t}\n" for t in range(tasks)]
        parts.append(f"\nDepends on Phase {max(p - 2, 0):02d}.\n\n")
    return "".join(parts)


def median_ms(text: str, name: str, repeat: int) -> tuple[float, int, int]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = convert_plan(text, source=name)
        times.append((time.perf_counter() - start) * 1000)
    wss = done.bundle["workstreams"]
    return statistics.median(times), len(wss), sum(len(ws["steps"]) for ws in wss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'plan':<46} {'lines':>6} {'ws':>4} {'steps':>6} {'ms':>8}")
    for path in sorted(PLANS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        ms, wss, steps = median_ms(text, path.name, args.repeat)
        print(f"{path.name:<46} {text.count(chr(10)):>6} {wss:>4} {steps:>6} {ms:>8.1f}")
    for phases, tasks in ((10, 10), (50, 10), (200, 10)):
        text = generated(phases, tasks)
        ms, wss, steps = median_ms(text, "generated.md", max(1, args.repeat // 2))
        name = f"generated {phases} phases x {tasks} tasks"
        print(f"{name:<46} {text.count(chr(10)):>6} {wss:>4} {steps:>6} {ms:>8.1f}")


if __name__ == "__main__":
    main()
