"""What the cache must never do: serve a damaged or half-written entry, fail a run, keep a
secret, or restore outputs the step's validation rejects."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cache.clones import Clones, ai_bundle, every_file_text, seed

from uet_doit.cache.entries import Entry, EntryFile
from uet_doit.cache.stores import CacheStore

from support import Project, attempt_rows, shell_step, wait_until


def entry_files(store: Path) -> list[Path]:
    return sorted(p for p in (store / "entries").rglob("*.json") if not p.name.startswith("."))


def filled_store(clones: Clones, store: Path) -> None:
    seed(clones.use(clones.first), ai_bundle())
    clones.first.run_ok("--cache-store", str(store))
    clones.forget_calls()
    seed(clones.use(clones.second), ai_bundle())


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_a_half_written_entry_is_a_miss_with_a_warning(clones: Clones, tmp_path: Path) -> None:
    store = tmp_path / "shared"
    filled_store(clones, store)
    torn = entry_files(store)[0]
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])
    err = clones.second.run_ok("--cache-store", str(store)).err
    assert "is not whole" in err and "treated as a miss" in err
    assert len(clones.calls()) == 1  # only the step whose entry was torn ran its tool
    outcomes = sorted(r["outcome"] for r in attempt_rows(clones.second))
    assert outcomes == ["cached", "cached", "cached", "succeeded"]


@pytest.mark.slow
def test_a_tampered_entry_or_blob_fails_its_hash_and_is_a_miss(
    clones: Clones, tmp_path: Path
) -> None:
    store = tmp_path / "shared"
    filled_store(clones, store)
    first, second = entry_files(store)[:2]
    data = json.loads(first.read_text())
    data["manifest"]["cost_usd"] = 0.0  # valid JSON, wrong hash
    first.write_text(json.dumps(data))
    digest = json.loads(second.read_text())["manifest"]["files"][0]["sha256"]
    blob = store / "blobs" / digest[:2] / digest
    blob.write_bytes(b"bit rot")
    clones.second.write("out/keep.md", "mine\n")
    err = clones.second.run_ok("--cache-store", str(store)).err
    assert "does not match its hash" in err
    assert err.count("treated as a miss") == 2
    assert len(clones.calls()) == 2
    # the run stored both again (the damaged blob was dropped when it failed its hash)
    clean = clones.second.uet("cache", "verify", "--store", str(store))
    assert clean.code == 0 and "DAMAGED" not in clean.out
    first.write_text(first.read_text().replace('"cost_usd"', '"cost_usd" ', 1)[:-3])
    blob.write_bytes(b"bit rot again")
    verify = clones.second.uet("cache", "verify", "--store", str(store))
    assert verify.code == 1 and verify.out.count("DAMAGED") == 2
    repaired = clones.second.uet("cache", "verify", "--store", str(store), "--repair")
    assert repaired.code == 0 and "removed 2 damaged entries" in repaired.out


def test_cached_outputs_that_fail_validation_or_name_other_files_are_a_miss(
    project: Project, tmp_path: Path
) -> None:
    """An entry made elsewhere whose files this project's validation rejects: the files are
    put back as they were and the step runs. An entry naming other files is not used."""
    store = tmp_path / "shared"
    step = shell_step(
        "s",
        "echo good > out.txt; echo ran >> runs.log",
        create_files=["out.txt"],
        validation={"command": "grep -q good out.txt"},
        cache=True,
    )
    project.bundle({"bundle_id": "v", "workstreams": [{"ws_id": "W", "steps": [step]}]})
    project.run_ok("--cache-store", str(store))
    [path] = entry_files(store)
    entry = Entry.from_bytes(path.read_bytes(), path.stem)
    bad = tmp_path / "bad.txt"
    bad.write_text("bad\n")
    cache = CacheStore(str(store))
    digest = hashlib.sha256(b"bad\n").hexdigest()
    cache.put_blob(bad, digest)
    forged = Entry(**{**entry.__dict__, "files": (EntryFile("out.txt", digest, 4),)})
    cache.put_entry(forged)
    (project.root / "out.txt").unlink()
    err = project.run_ok("--cache-store", str(store)).err
    assert "cached outputs failed the step's validation" in err
    assert project.read("out.txt") == "good\n"
    assert project.lines("runs.log") == ["ran", "ran"]

    # an entry naming a file the step does not create is refused, not written
    outside = EntryFile("../escaped.txt", digest, 4)
    cache.put_entry(Entry(**{**entry.__dict__, "files": (outside,)}))
    (project.root / "out.txt").unlink()
    err = project.run_ok("--cache-store", str(store)).err
    assert "names other files than the step creates" in err
    assert not (project.root.parent / "escaped.txt").exists()
    assert project.lines("runs.log") == ["ran", "ran", "ran"]


@pytest.mark.slow
def test_a_run_killed_while_storing_leaves_no_entry_a_later_run_reads(tmp_path: Path) -> None:
    store = tmp_path / "shared"
    writer, reader = tmp_path / "writer", tmp_path / "reader"
    big = "import os; f=open('out/big.bin','wb'); [f.write(os.urandom(1<<20)) for _ in range(96)]"
    step = shell_step(
        "big",
        [sys.executable, "-c", big + "; open('runs.log','a').write('ran\\n')"],
        create_files=["out/big.bin"],
        cache=True,
    )
    bundle: dict[str, Any] = {"bundle_id": "k", "workstreams": [{"ws_id": "W", "steps": [step]}]}
    for root in (writer, reader):
        Project(root).bundle(bundle)
        (root / "out").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uet_doit", "run", "bundle.yaml", "--cache-store", str(store)],
        cwd=writer,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def writing() -> bool:
        return any("uet-tmp" in p.name for p in store.rglob("*"))

    try:
        wait_until(lambda: proc.poll() is not None or writing(), 60, every=0.001)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # mid-write of the 96 MiB blob
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert entry_files(store) == []
    assert any("uet-tmp" in p.name for p in store.rglob("*"))  # the torn temporary stays
    project = Project(reader)
    os.chdir(reader)
    try:
        err = project.run_ok("--cache-store", str(store)).err
        assert "warning" not in err
        assert project.lines("runs.log") == ["ran"]  # a miss: the step ran
        assert len(entry_files(store)) == 1
        pruned = project.uet("cache", "prune", "--older-than", "0s", "--store", str(store))
        assert pruned.code == 0
    finally:
        os.chdir(tmp_path)


SECRET_ENV = "deploy-token-SECRET-9f8e7d"
SECRET_STEP = "step-secret-SECRET-1a2b3c"
SECRET_KEY = "sk-ant-test-SECRET-445566"


def test_no_secret_in_any_key_entry_or_why_output(
    clones: Clones, tmp_path: Path, monkeypatch: Any
) -> None:
    store = tmp_path / "shared"
    monkeypatch.setenv("DEPLOY_TOKEN", SECRET_ENV)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET_KEY)
    bundle = ai_bundle(cache={"env": ["DEPLOY_TOKEN", "ANTHROPIC_API_KEY"]})
    bundle["workstreams"][0]["steps"][0]["env"] = {"SERVICE_PASSWORD": SECRET_STEP}
    first = clones.use(clones.first)
    seed(first, bundle)
    first.run_ok("--cache-store", str(store))
    monkeypatch.setenv("DEPLOY_TOKEN", SECRET_ENV + "-rotated")
    why = first.uet("why", "a", "--cache-store", str(store), "--json")
    text = first.uet("why", "a", "--cache-store", str(store))
    report = json.loads(why.out)
    assert report["cache"]["hit"] is False
    assert "env:DEPLOY_TOKEN" in [c["part"] for c in report["key_changes"]]
    assert "the environment variable DEPLOY_TOKEN changed" in text.out
    uet_dir = first.root / ".uet"
    stored = [uet_dir / "state.db", uet_dir / "state.db-wal"]  # the WAL holds recent pages
    state = b"".join(p.read_bytes() for p in stored if p.exists()).decode("utf-8", "replace")
    for secret in (SECRET_ENV, SECRET_STEP, SECRET_KEY):
        assert secret not in every_file_text(store)
        assert secret not in why.out + text.out
        assert secret not in state
    stats = first.uet("cache", "stats", "--store", str(store), "--json")
    assert json.loads(stats.out)["entries"] == 4
