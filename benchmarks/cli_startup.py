"""How long `uet` takes to answer before it does any work: help, version, and the reading
commands on a small bundle. Each command runs in a fresh interpreter, as a user types it.

    python benchmarks/cli_startup.py              # 21 runs each, median and min in ms
    python benchmarks/cli_startup.py --runs 51
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUNDLE = """\
bundle_id: startup
workstreams:
  - ws_id: ws
    steps:
      - {step_id: one, tool_profile_id: shell, command: "true"}
      - {step_id: two, tool_profile_id: shell, command: "true", depends_on: [one]}
"""
COMMANDS = (
    ("--help",),
    ("--version",),
    ("run", "--help"),
    ("validate", "b.yaml"),
    ("list", "b.yaml"),
    ("runs",),
    ("status",),
)


def uet_modules(cwd: Path, argv: tuple[str, ...]) -> int:
    """How many uet_doit modules the command imports (what lazy imports keep small)."""
    code = (
        "import sys, contextlib, io\n"
        "from uet_doit.cli.main import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try: main({list(argv)!r})\n"
        "    except SystemExit: pass\n"
        "print(sum(1 for m in sys.modules if m.startswith('uet_doit')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per command (default 21)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "b.yaml").write_text(BUNDLE, encoding="utf-8")
        env = {**os.environ, "CI": "1"}
        subprocess.run([sys.executable, "-m", "uet_doit", "run", "b.yaml"], cwd=cwd, env=env,
                       capture_output=True, check=True)  # fmt: skip
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {load:.2f}")
        print(f"{'command':<22} {'median ms':>10} {'min ms':>8} {'uet modules':>12}")
        for argv in COMMANDS:
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "uet_doit", *argv], cwd=cwd, env=env,
                               capture_output=True, check=False)  # fmt: skip
                times.append((time.perf_counter() - start) * 1000)
            name = "uet " + " ".join(argv)
            print(
                f"{name:<22} {statistics.median(times):>10.0f} {min(times):>8.0f} "
                f"{uet_modules(cwd, argv):>12}"
            )


if __name__ == "__main__":
    main()
