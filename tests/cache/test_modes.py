"""Who is cached: `cache:` at bundle, workstream and step level, `--cache` / `--no-cache`,
`read-only`, the defaults; and what `--dry-run` and `uet cache` say about it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cache.clones import Clones, ai_bundle, seed

from uet_doit.cache.commands import parse_age
from uet_doit.cache.settings import CacheMode, step_mode
from uet_doit.errors import UsageError

from support import Project, attempt_rows, shell_step


def counting_bundle(**step_extra: object) -> dict[str, object]:
    step = shell_step(
        "s", "echo made > out.txt; echo ran >> runs.log", create_files=["out.txt"], **step_extra
    )
    return {"bundle_id": "m", "workstreams": [{"ws_id": "W", "steps": [step]}]}


def fresh(project: Project) -> None:
    """A clone: same bundle, none of the local state (doit's record, outputs)."""
    for name in ("out.txt", ".doit.db"):
        (project.root / name).unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("step_extra", "args", "cached"),
    [
        ({}, (), False),  # shell steps: only when asked
        ({}, ("--cache",), True),
        ({"cache": True}, (), True),
        ({"cache": True}, ("--no-cache",), False),
        ({"cache": False}, ("--cache",), False),
        ({"cache": {"mode": True, "env": ["HOME"]}}, (), True),
    ],
)
def test_shell_steps_are_cached_only_when_asked(
    project: Project, step_extra: dict[str, object], args: tuple[str, ...], cached: bool
) -> None:
    project.bundle(counting_bundle(**step_extra))
    project.run_ok(*args)
    fresh(project)
    project.run_ok(*args)
    assert project.lines("runs.log") == (["ran"] if cached else ["ran", "ran"])
    assert project.read("out.txt") == "made\n"


def test_workstream_and_bundle_levels_apply_to_their_steps(project: Project) -> None:
    bundle = counting_bundle()
    bundle["workstreams"][0]["cache"] = True  # type: ignore[index]
    project.bundle(bundle)
    project.run_ok()
    fresh(project)
    project.run_ok()
    assert project.lines("runs.log") == ["ran"]
    bundle = counting_bundle(cache=False)
    bundle["cache"] = True
    project.bundle(bundle)
    fresh(project)
    project.run_ok()
    assert project.lines("runs.log") == ["ran", "ran"]  # the step's own false wins


def test_read_only_looks_up_but_never_stores(project: Project) -> None:
    project.bundle(counting_bundle(cache="read-only"))
    project.run_ok()
    assert not (project.root / ".uet" / "cache" / "entries").exists()
    project.bundle(counting_bundle(cache=True))
    fresh(project)
    project.run_ok()
    project.bundle(counting_bundle(cache="read-only"))
    fresh(project)
    project.run_ok()
    assert project.lines("runs.log") == ["ran", "ran"]  # the read-only run was a hit


def test_ai_steps_are_cached_by_default_only_once_a_store_is_configured(
    clones: Clones, tmp_path: Path
) -> None:
    first = clones.use(clones.first)
    seed(first, ai_bundle())
    first.run_ok()
    assert not (first.root / ".uet" / "cache").exists()
    assert clones.version_calls() == []  # nothing asked when nothing is cached
    why = first.uet("why", "a")
    assert "a would not run" in why.out
    first.write("notes.md", "edited\n")
    why = first.uet("why", "a")
    assert "not cached: no cache store is configured" in why.out


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_dry_run_shows_hits_misses_and_what_a_hit_saves(clones: Clones, tmp_path: Path) -> None:
    store = str(tmp_path / "shared")
    first = clones.use(clones.first)
    seed(first, ai_bundle())
    first.run_ok("--cache-store", store)
    spent = {r["step_id"]: r["cost_usd"] for r in attempt_rows(first)}
    second = clones.use(clones.second)
    seed(second, ai_bundle())
    second.write("notes.md", "edited in this clone\n")
    clones.forget_calls()
    dry = second.uet("run", "bundle.yaml", "--dry-run", "--cache-store", store)
    assert dry.code == 0, dry.err
    out = dry.out.splitlines()
    summary = out.index(f"step cache: 1 hit(s) saving ${spent['d']:.4f}, 3 miss(es)")
    state = {ln.split()[0]: ln.split()[1:3] for ln in out[:summary] if ln.startswith("  ")}
    assert state["d"] == ["cache", "hit"]  # in the step list: it leaves the forecast
    assert "3 step(s) would run" in dry.out
    listed = {ln.split()[0]: " ".join(ln.split()[1:]) for ln in out[summary + 1 :]}
    assert listed == {
        "a": "cache miss",
        "b": "miss: waits for out/a.md",
        "c": "cache miss",
        "d": f"cache hit, saves ${spent['d']:.4f}",
    }
    assert clones.calls() == []  # a dry run does no work


def test_cache_stats_and_prune(project: Project, tmp_path: Path) -> None:
    project.bundle(counting_bundle(cache=True))
    project.run_ok()
    stats = json.loads(project.uet("cache", "stats", "--json").out)
    assert (stats["entries"], stats["blobs"], stats["blob_bytes"]) == (1, 1, 5)
    kept = project.uet("cache", "prune", "--older-than", "30d")
    assert "removed 0 entries" in kept.out and "1 entries kept" in kept.out
    fresh(project)
    project.run_ok()
    report = json.loads(project.uet("cache", "stats", "--json").out)
    assert report["cached_attempts_here"] == 1
    gone = project.uet("cache", "prune", "--older-than", "0s")
    assert "removed 1 entries" in gone.out
    bad = project.uet("cache", "prune", "--older-than", "soon")
    assert bad.code == 3 and "30d, 12h" in bad.err


def test_ages_and_modes() -> None:
    assert parse_age("30d") == 30 * 86400
    assert parse_age("12h") == 12 * 3600
    assert parse_age("2") == 2 * 86400
    with pytest.raises(UsageError):
        parse_age("-1d")
    assert step_mode("aider", None, "default", True)[0] == CacheMode.ON
    assert step_mode("aider", None, "default", False)[0] == CacheMode.OFF
    assert step_mode("pytest", None, "default", True)[0] == CacheMode.OFF
    assert step_mode("pytest", None, "on", False)[0] == CacheMode.ON
    assert step_mode("aider", "read-only", "on", True)[0] == CacheMode.READ_ONLY
    assert step_mode("aider", "on", "off", True)[0] == CacheMode.OFF


@pytest.mark.slow
def test_plain_doit_runs_use_the_local_cache_the_bundle_asks_for(project: Project) -> None:
    import subprocess
    import sys

    project.bundle(counting_bundle(cache=True))
    project.write(
        "dodo.py",
        "from uet_doit import tasks_from_bundle\n"
        "DOIT_CONFIG = {'backend': 'uet-sqlite', 'dep_file': '.doit.db'}\n"
        "task_m = tasks_from_bundle('bundle.yaml')\n",
    )
    for _ in range(2):
        fresh(project)
        subprocess.run(
            [sys.executable, "-m", "doit", "m"], cwd=project.root, check=True, capture_output=True
        )
    assert project.lines("runs.log") == ["ran"]
    assert project.read("out.txt") == "made\n"


def test_a_wrong_cache_setting_is_one_problem_with_its_place(project: Project) -> None:
    project.bundle(counting_bundle(cache="sometimes"))
    result = project.uet("validate", "bundle.yaml")
    assert result.code == 3
    [problem] = [ln for ln in result.err.splitlines() if "cache" in ln]
    assert "workstreams[0].steps[0].cache" in problem
    assert "true, false, read-only or {mode: ..., env: [...]}" in problem
