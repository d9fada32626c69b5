"""A plan paid for once: a second clone pointed at the same store runs no tool.

Through `uet run` with the fake AI CLIs: the folder store and an S3-compatible server
(moto's, on 127.0.0.1), identical outputs, `cached` attempts, $0 spent and the saving shown,
exactly the steps whose key changed re-run, and `uet why` naming the changed file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cache.clones import Clones, ai_bundle, seed

from support import attempt_rows, wait_until

OUTPUTS = ("out/a.md", "out/b.md", "out/c.md", "out/d.md")


def paid_then_reused(clones: Clones, store: str) -> None:
    first = clones.use(clones.first)
    seed(first, ai_bundle())
    first.run_ok("--cache-store", store)
    assert sorted(c["tool"] for c in clones.calls()) == ["aider", "claude", "codex", "gemini"]
    spent = first.status()["total_cost_usd"]
    assert spent > 0

    clones.forget_calls()
    second = clones.use(clones.second)
    seed(second, ai_bundle())
    out = second.run_ok("--cache-store", store).text

    assert clones.calls() == []  # no tool did any work
    assert out.count(", from the cache)") == 4
    for rel in OUTPUTS:
        assert second.read(rel) == first.read(rel)
    rows = attempt_rows(second)
    assert [r["outcome"] for r in rows] == ["cached"] * 4
    assert all(r["cost_usd"] == 0 for r in rows)
    status = second.status()
    assert status["total_cost_usd"] == 0
    assert status["saved_usd"] == pytest.approx(spent)
    assert all(s["cached"] and s["status"] == "succeeded" for s in status["steps"])

    cost = second.uet("cost", "--json")
    report = json.loads(cost.out)
    assert report["run_cost_usd"] == 0
    assert report["saved_usd"] == pytest.approx(spent)
    assert report["cached_attempts"] == 4
    text = second.uet("cost").out
    assert "$0.0000" in text and f"saved by the step cache: ${spent:.4f}" in text

    # doit recorded the steps as done: a third run has nothing to do, not even a lookup
    again = second.run_ok("--cache-store", store).text
    assert "0 ran, 4 up to date" in again


def test_second_clone_on_a_shared_folder_calls_no_tool(clones: Clones, tmp_path: Path) -> None:
    paid_then_reused(clones, str(tmp_path / "shared-cache"))


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_store_named_by_environment_and_by_profile(
    clones: Clones, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    first = clones.use(clones.first)
    seed(first, ai_bundle())
    monkeypatch.setenv("UET_CACHE_STORE", str(shared))
    first.run_ok()
    monkeypatch.delenv("UET_CACHE_STORE")
    clones.forget_calls()
    second = clones.use(clones.second)
    seed(second, ai_bundle())
    second.write("PROJECT_PROFILE.yaml", f"languages: [python]\ncache_store: {shared}\n")
    second.run_ok()
    assert clones.calls() == []


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_tool_version_is_asked_once_per_run_and_a_new_version_misses(
    clones: Clones, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = str(tmp_path / "shared")
    first = clones.use(clones.first)
    bundle = ai_bundle()
    bundle["workstreams"][0]["steps"][1]["tool_profile_id"] = "aider"  # two aider steps
    seed(first, bundle)
    first.run_ok("--cache-store", store)
    assert [c["tool"] for c in clones.version_calls()].count("aider") == 1

    clones.forget_calls()
    second = clones.use(clones.second)
    seed(second, bundle)
    monkeypatch.setenv("FAKE_AIDER_VERSION", "aider 0.87.0")
    why = second.uet("why", "a", "--bundle", "bundle.yaml", "--cache-store", store, "--json")
    why = json.loads(why.out)
    assert why["would_run"] and not why["cache"]["hit"]
    second.run_ok("--cache-store", store)
    # the two aider steps miss; c (gemini) and d (codex) hit
    assert sorted(c["tool"] for c in clones.calls()) == ["aider", "aider"]


@pytest.mark.slow
def test_changing_one_input_misses_exactly_the_steps_whose_key_changed(
    clones: Clones, tmp_path: Path
) -> None:
    store = str(tmp_path / "shared")
    first = clones.use(clones.first)
    seed(first, ai_bundle())
    first.run_ok("--cache-store", store)
    clones.forget_calls()

    second = clones.use(clones.second)
    seed(second, ai_bundle())
    second.run_ok("--cache-store", store)  # all hits: the clone knows each step's key now
    second.write("notes.md", "the notes, edited\n")
    for step in ("a", "c"):
        res = second.uet("why", step, "--cache-store", store, "--json")
        assert res.code == 0, res.err
        report = json.loads(res.out)
        assert report["would_run"]
        assert [c["part"] for c in report["key_changes"]] == ["input:notes.md"]
        text = second.uet("why", step, "--cache-store", store).out
        assert "the input file notes.md changed since the last success" in text
    only_a = second.uet("run", "bundle.yaml", "a", "--cache-store", store)
    assert only_a.code == 0, only_a.err
    # the fake aider adds a line to an output that exists: b's upstream output changed
    report = json.loads(second.uet("why", "b", "--cache-store", store, "--json").out)
    assert report["would_run"]
    assert [c["part"] for c in report["key_changes"]] == ["upstream:out/a.md"]
    second.run_ok("--cache-store", store)
    assert sorted(c["tool"] for c in clones.calls()) == ["aider", "claude", "gemini"]
    outcomes = {r["step_id"]: r["outcome"] for r in attempt_rows(second)[4:]}
    assert outcomes == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}  # d: up to date


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_why_in_a_fresh_clone_compares_with_the_shared_store(
    clones: Clones, tmp_path: Path
) -> None:
    store = str(tmp_path / "shared")
    first = clones.use(clones.first)
    seed(first, ai_bundle())
    first.run_ok("--cache-store", store)
    second = clones.use(clones.second)
    seed(second, ai_bundle())
    second.write("notes.md", "edited before this clone ever ran\n")
    res = second.uet("why", "a", "--bundle", "bundle.yaml", "--cache-store", store)
    assert res.code == 0, res.err
    assert f"the input file notes.md changed since the last success stored in {store}" in res.out
    hit = second.uet("why", "d", "--bundle", "bundle.yaml", "--cache-store", store)
    assert "would not run its tool: cache entry" in hit.out and "saving $" in hit.out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, with a bucket; its URL."""
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                return proc.poll() is not None  # it died: stop waiting
            return True

        if not wait_until(listening, 30) or proc.poll() is not None:
            pytest.skip("moto's server did not start")
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": url,
        }.items():
            monkeypatch.setenv(name, value)
        boto3.client("s3", endpoint_url=url).create_bucket(Bucket="team-cache")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.mark.slow
def test_second_clone_on_an_s3_compatible_store_calls_no_tool(
    clones: Clones, s3_server: str
) -> None:
    paid_then_reused(clones, "s3://team-cache/uet")


@pytest.mark.slow
def test_an_unreachable_store_is_a_warning_and_the_steps_run(
    clones: Clones, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("s3fs")
    port = _free_port()  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    first = clones.use(clones.first)
    seed(first, ai_bundle())
    started = time.monotonic()
    result = first.uet("run", "bundle.yaml", "--cache-store", "s3://nowhere/cache")
    assert result.code == 0, result.out + result.err
    assert result.err.count("warning: step cache") == 1  # said once, not per step
    assert "s3://nowhere/cache" in result.err
    assert len(clones.calls()) == 4
    assert time.monotonic() - started < 60
    assert os.path.exists(first.root / "out" / "c.md")
