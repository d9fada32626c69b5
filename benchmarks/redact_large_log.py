"""Time and peak memory of redacting a large tool log with secrets set (issue 13, item 7).

Writes a log of --mb megabytes (ordinary output lines, a key every few thousand lines, one
across every 1 MiB boundary), then redacts a fresh copy of it in a child process with:

- old: `Redactor.redact_file` as it was before streaming (read whole, two re.sub, write),
  loaded from git (`--old-rev`);
- new: the streamed `redact_file`;
- new+cap: the streamed `redact_file` with the default `max_log_bytes` (50 MB).

Each child reports its wall time and peak RSS (`ru_maxrss`); old and new must give
byte-identical logs, and no key may remain.

    python benchmarks/redact_large_log.py              # 500 MB, old vs new vs new+cap
    python benchmarks/redact_large_log.py --mb 50 --only new
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: the last commit with the read-whole redact_file
OLD_REV = "b77588a"
ENV = {
    "OPENAI_API_KEY": "sk-proj-benchmarkbenchmarkbenchmark0123",
    "ANTHROPIC_API_KEY": "sk-ant-api03-benchmark-key-value-4567",
    "GITHUB_TOKEN": "ghtoken-benchmark-89ab",
    "DB_PASSWORD": "correct-horse-battery",
    "DEPLOY_SECRET": "deploy-secret-value-cdef",
}

#: redact one file with the implementation named in argv; print seconds and peak RSS
_CHILD = r"""
import importlib.util, json, resource, sys, time
impl, path, env_json, cap, old_source = sys.argv[1:6]
if impl == "old":
    spec = importlib.util.spec_from_file_location("old_redact", old_source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
else:
    from uet_doit.tools import redact as module
from pathlib import Path
redactor = module.Redactor.from_env(json.loads(env_json))
start = time.perf_counter()
if impl == "old":
    changed = redactor.redact_file(Path(path))
else:
    changed = redactor.redact_file(Path(path), max_bytes=int(cap) if cap != "0" else None)
seconds = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_kb / 1024, "changed": changed}))
"""

LINES = [
    b"INFO  2026-12-01 11:00:00 worker-3 processed batch 000123 in 0.042s (ok)\n",
    b"DEBUG request POST https://api.example.invalid/v1/chat/completions 200 1834 tokens\n",
    b'  File "/srv/app/pipeline/steps.py", line 212, in run_step\n',
    b"WARN  retrying after rate limit (attempt 2 of 5), sleeping 4.0s\n",
]


def write_log(path: Path, megabytes: int) -> None:
    """Ordinary lines, a key every ~4000 lines, and a key across every 1 MiB boundary."""
    mib = 1024 * 1024
    keys = [v.encode() for v in ENV.values()]
    block = b"".join(LINES * 1000)
    written = 0
    n = 0
    with path.open("wb") as fh:
        while written < megabytes * mib:
            key = keys[n % len(keys)]
            # end this block so that the key straddles the next MiB boundary
            room = mib - (written % mib) - len(key) // 2 - len(b"Authorization: Bearer ")
            chunk = block[: max(0, min(room, len(block)))]
            line = b"Authorization: Bearer " + key + b"\n"
            fh.write(chunk + line)
            written += len(chunk) + len(line)
            n += 1


def file_digest_and_leaks(path: Path) -> tuple[str, int]:
    keys = [v.encode() for v in ENV.values()]
    overlap = max(map(len, keys))
    digest = hashlib.sha256()
    leaks = 0
    tail = b""
    with path.open("rb") as fh:
        while data := fh.read(1024 * 1024):
            digest.update(data)
            window = tail + data
            leaks += sum(window.count(k) for k in keys)
            tail = window[-overlap + 1 :]  # shorter than a key: never counted twice
    return digest.hexdigest(), leaks


def measure(impl: str, source: Path, work: Path, cap: int, old_source: Path) -> dict[str, object]:
    target = work / f"{impl}.log"
    shutil.copyfile(source, target)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            impl.split("+", maxsplit=1)[0],
            str(target),
            json.dumps(ENV),
            str(cap),
            str(old_source),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{impl} failed:\n{done.stderr}")
    row: dict[str, object] = json.loads(done.stdout)
    row["impl"] = impl
    row["size_mb"] = target.stat().st_size / 1024 / 1024
    row["sha256"], row["keys_left"] = file_digest_and_leaks(target)
    target.unlink()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=500, help="size of the log (default 500)")
    parser.add_argument("--only", nargs="+", choices=["old", "new", "new+cap"])
    parser.add_argument("--old-rev", default=OLD_REV, help="git revision of the old code")
    parser.add_argument("--dir", type=Path, help="where to write the logs (default: a temp dir)")
    args = parser.parse_args(argv)
    impls = args.only or ["old", "new", "new+cap"]
    with tempfile.TemporaryDirectory(prefix="uet-redact-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        old_source = work / "old_redact.py"
        if "old" in impls:
            shown = subprocess.run(
                ["git", "show", f"{args.old_rev}:uet_doit/tools/redact.py"],
                cwd=REPO,
                capture_output=True,
                check=False,
            )
            if shown.returncode != 0:
                raise SystemExit(f"cannot read the old code at {args.old_rev}: {shown.stderr!r}")
            old_source.write_bytes(shown.stdout)
        source = work / "source.log"
        t0 = time.perf_counter()
        write_log(source, args.mb)
        size = source.stat().st_size / 1024 / 1024
        print(f"log: {size:.0f} MB, {len(ENV)} secrets set ({time.perf_counter() - t0:.1f}s)")
        print(f"{'impl':<8} {'seconds':>8} {'peak RSS MB':>12} {'out MB':>8} {'keys left':>10}")
        rows = []
        for impl in impls:
            cap = 50 * 1024 * 1024 if impl == "new+cap" else 0
            row = measure(impl, source, work, cap, old_source)
            rows.append(row)
            print(
                f"{impl:<8} {row['seconds']:>8.2f} {row['peak_rss_mb']:>12.1f} "
                f"{row['size_mb']:>8.1f} {row['keys_left']:>10}"
            )
        by = {r["impl"]: r for r in rows}
        if "old" in by and "new" in by:
            same = by["old"]["sha256"] == by["new"]["sha256"]
            print(f"old and new logs identical: {same}")
            if not same:
                return 1
        return 1 if any(r["keys_left"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
