"""A huge output costs disk, never memory: hashed, stored, restored and verified in chunks,
and not cached at all past the step cache's `max_bytes` (uet says so)."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support import Project, shell_step

#: the output is larger than the address space the run may use: reading it whole fails
OUTPUT_BYTES = 320 << 20
ADDRESS_SPACE = 200 << 20


def sparse_bundle(size: int, **cache: Any) -> dict[str, Any]:
    make = "import os; os.makedirs('out', exist_ok=True)"
    make += f"; open('out/big.bin', 'wb').truncate({size})"
    log = "; open('runs.log', 'a').write('ran\\n')"
    step = shell_step(
        "big", [sys.executable, "-c", make + log], create_files=["out/big.bin"], cache=cache
    )
    return {"bundle_id": "huge", "workstreams": [{"ws_id": "W", "steps": [step]}]}


def capped_uet(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`uet ARGS` in a child whose address space is capped below the output's size."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    return subprocess.run(
        [sys.executable, "-m", "uet_doit", *args],
        cwd=root,
        capture_output=True,
        text=True,
        preexec_fn=cap,
        timeout=600,
        check=False,
    )


def forget_outputs(project: Project) -> None:
    (project.root / "out" / "big.bin").unlink()
    for db in project.root.glob(".doit.db*"):
        db.unlink()


@pytest.mark.slow
def test_an_output_larger_than_memory_is_stored_restored_and_verified(project: Project) -> None:
    project.bundle(sparse_bundle(OUTPUT_BYTES, mode=True))
    made = capped_uet(project.root, "run", "bundle.yaml", "--reporter", "plain")
    assert made.returncode == 0, made.stdout + made.stderr
    blobs = [p for p in (project.root / ".uet/cache/blobs").rglob("*") if p.is_file()]
    assert [b.stat().st_size for b in blobs] == [OUTPUT_BYTES]

    forget_outputs(project)
    restored = capped_uet(project.root, "run", "bundle.yaml", "--reporter", "plain")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "from the cache" in restored.stdout
    assert project.lines("runs.log") == ["ran"]
    assert (project.root / "out" / "big.bin").stat().st_size == OUTPUT_BYTES

    verified = capped_uet(project.root, "cache", "verify", "--local")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "checked 1 entries and 1 blobs" in verified.stdout


def test_outputs_over_max_bytes_are_not_cached_and_uet_says_so(project: Project) -> None:
    project.bundle(sparse_bundle(10_000, mode=True, max_bytes=4096))
    first = project.uet("run", "bundle.yaml", "--reporter", "plain")
    assert first.code == 0, first.out + first.err
    assert "outputs not stored: they hold 0.0 MiB, over the step cache's max_bytes" in first.err
    assert "cache: {max_bytes: N}" in first.err
    assert not (project.root / ".uet/cache/entries").exists()
    forget_outputs(project)
    again = project.uet("run", "bundle.yaml", "--reporter", "plain")
    assert again.code == 0
    assert project.lines("runs.log") == ["ran", "ran"]


def test_an_entry_over_the_readers_max_bytes_is_a_miss(project: Project) -> None:
    project.bundle(sparse_bundle(10_000, mode=True))
    assert project.uet("run", "bundle.yaml").code == 0
    forget_outputs(project)
    project.bundle(sparse_bundle(10_000, mode=True, max_bytes=4096))  # the same key
    planned = project.uet("run", "bundle.yaml", "--dry-run")
    assert "over the step's cache max_bytes" in planned.out, planned.out + planned.err
    again = project.uet("run", "bundle.yaml", "--reporter", "plain")
    assert again.code == 0, again.out + again.err
    assert "over the step cache's max_bytes" in again.err and "the step runs" in again.err
    assert project.lines("runs.log") == ["ran", "ran"]
