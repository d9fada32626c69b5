"""A shared folder store written by someone hostile: `uet run` and `uet cache verify` stay
bounded (no FIFO hang, no endless read), never read or delete outside the store, and treat
whatever is not a whole uet entry as a miss."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from uet_doit.cache.blobs import text_digest

from support import Project, quick_first, shell_step

BUNDLE: dict[str, Any] = {
    "bundle_id": "p",
    "workstreams": [
        {
            "ws_id": "W",
            "steps": [
                shell_step(
                    "s",
                    "echo made > out.txt; echo ran >> runs.log",
                    create_files=["out.txt"],
                    cache=True,
                )
            ],
        }
    ],
}


#: manifest fields set to a value of the wrong shape
FORGED = [("cost_usd", "n/a"), ("cost_usd", -5.0), ("files", "out.txt"), ("parts", ["a"])]
FORGED += [("surprise", 1)]  # each a `uet run` child: the quick loop tries the first


def uet(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`uet ARGS` in a child with a deadline: a hang fails the test instead of stalling it."""
    return subprocess.run(
        [sys.executable, "-m", "uet_doit", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run(root: Path) -> subprocess.CompletedProcess[str]:
    return uet(root, "run", "bundle.yaml", "--reporter", "plain", "--cache-store", "store")


@pytest.fixture(scope="module")
def stored_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose step is in the folder store `store/`, and whose output is gone: made
    once (a `uet run` in a child), copied for each test."""
    root = tmp_path_factory.mktemp("stored")
    Project(root).bundle(BUNDLE)
    first = run(root)
    assert first.returncode == 0, first.stdout + first.stderr
    (root / "out.txt").unlink()
    for db in root.glob(".doit.db*"):
        db.unlink()
    return root


@pytest.fixture
def stored(project: Project, stored_once: Path) -> Project:
    shutil.copytree(stored_once, project.root, symlinks=True, dirs_exist_ok=True)
    return project


def entry_file(project: Project) -> Path:
    (found,) = (project.root / "store" / "entries").rglob("*.json")
    return found


def blob_file(project: Project) -> Path:
    (found,) = (p for p in (project.root / "store" / "blobs").rglob("*") if p.is_file())
    return found


def rewrite(project: Project, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the entry's manifest and seal it again: it looks whole, as a forger makes it."""
    path = entry_file(project)
    envelope = json.loads(path.read_text())
    change(envelope["manifest"])
    envelope["sha256"] = text_digest(envelope["manifest"])
    path.write_text(json.dumps(envelope))


def replace_with(path: Path, kind: str) -> None:
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


def assert_a_miss(project: Project, result: subprocess.CompletedProcess[str], said: str) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert said in result.stderr and "treated as a miss" in result.stderr
    assert "Traceback" not in result.stderr
    assert project.lines("runs.log") == ["ran", "ran"]  # the step ran again
    assert project.read("out.txt") == "made\n"


@pytest.mark.slow
def test_a_blob_name_that_is_a_path_reads_and_deletes_nothing_outside(stored: Project) -> None:
    victim = stored.root / "victim.txt"
    victim.write_text("keep me\n")

    def lead_out(manifest: dict[str, Any]) -> None:
        manifest["files"][0]["sha256"] = "../../victim.txt"

    rewrite(stored, lead_out)
    assert_a_miss(stored, run(stored.root), "is not a sha256")
    assert victim.read_text() == "keep me\n"
    rewrite(stored, lead_out)  # the run stored a good entry again: poison it once more
    checked = uet(stored.root, "cache", "verify", "--store", "store")
    assert checked.returncode == 1 and "is not a sha256" in checked.stdout
    repaired = uet(stored.root, "cache", "verify", "--store", "store", "--repair")
    assert repaired.returncode == 0 and "removed 1 damaged entries" in repaired.stdout
    assert victim.read_text() == "keep me\n"


@pytest.mark.parametrize(
    ("which", "kind", "said"),
    [
        ("entry", "fifo", "is a FIFO"),
        ("entry", "symlink", "is a symbolic link"),
        ("blob", "fifo", "is a FIFO"),
        ("blob", "symlink", "is a symbolic link"),
    ],
)
@pytest.mark.slow
def test_an_entry_or_blob_that_is_no_regular_file_is_a_miss_without_waiting(
    stored: Project, which: str, kind: str, said: str
) -> None:
    target = entry_file(stored) if which == "entry" else blob_file(stored)
    replace_with(target, kind)
    checked = uet(stored.root, "cache", "verify", "--store", "store")
    assert checked.returncode == 1 and said in checked.stdout, checked.stdout + checked.stderr
    assert_a_miss(stored, run(stored.root), said)
    assert target.is_file() and not target.is_symlink()  # the run stored it anew
    assert uet(stored.root, "cache", "verify", "--store", "store").returncode == 0


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_an_oversized_entry_is_not_read(stored: Project) -> None:
    with entry_file(stored).open("r+b") as fh:
        fh.truncate(17 << 20)
    assert_a_miss(stored, run(stored.root), "is larger than any uet writes")


@pytest.mark.parametrize(
    ("field", "value"),
    quick_first(FORGED, unpack=True),
)
def test_a_forged_manifest_of_the_wrong_shape_is_a_miss(
    stored: Project, field: str, value: object
) -> None:
    rewrite(stored, lambda manifest: manifest.__setitem__(field, value))
    assert_a_miss(stored, run(stored.root), "is not a cache entry")


def test_prune_deletes_only_the_stores_own_files(stored: Project) -> None:
    store = stored.root / "store"
    foreign = [store / "entries" / "zz" / "notes.json", store / "blobs" / "README", store / "x"]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not uet's\n")
    pruned = uet(stored.root, "cache", "prune", "--older-than", "0s", "--store", "store")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert "removed 1 entries" in pruned.stdout
    assert all(path.exists() for path in foreign)


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_a_store_folder_leading_out_is_neither_read_nor_deleted_from(stored: Project) -> None:
    outside = stored.root / "outside"
    outside.mkdir()
    digest = "ab" * 32
    (outside / digest).write_text("not uet's\n")
    (stored.root / "store" / "blobs" / "ab").symlink_to(outside)
    rewrite(stored, lambda manifest: manifest["files"][0].__setitem__("sha256", digest))
    assert_a_miss(stored, run(stored.root), "outside the store's own folders")
    assert (outside / digest).read_text() == "not uet's\n"
