"""Secrets never reach logs: env values of secret-named variables and key shapes are masked."""

from __future__ import annotations

import random
import time
import tracemalloc
from pathlib import Path

import pytest

from uet_doit.tools import redact
from uet_doit.tools.redact import Redactor

ENV = {
    "OPENAI_API_KEY": "sk-proj-abcdefghijklmnopqrstuvwxyz123456",
    "GITHUB_TOKEN": "ghtoken-value-1",
    "MY_SECRET_THING": "hunter22-long",
    "DB_PASSWORD": "pa$$w(rd)+",
    "SHORT_TOKEN": "abc",
    "TINY_SECRET": "ab",
    "FEATURE_TOKEN": "none",
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/user",
}


def test_values_of_secret_variables_are_masked() -> None:
    redactor = Redactor.from_env(ENV)
    text = (
        "key=sk-proj-abcdefghijklmnopqrstuvwxyz123456 token ghtoken-value-1 "
        "pw pa$$w(rd)+ s hunter22-long short abc path /usr/bin:/bin"
    )
    assert redactor.redact(text) == "key=*** token *** pw *** s *** short *** path /usr/bin:/bin"
    assert redactor.secret_count == 5  # "ab" is too short to mask, "none" is a switch


def test_key_shapes_are_masked_without_env() -> None:
    redactor = Redactor()
    text = (
        "Authorization: Bearer sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAA and "
        "AIzaSyA1234567890abcdefghijklmnopqrstuv and ghp_" + "a" * 36 + " and AKIAABCDEFGHIJKLMNOP"
    )
    assert redactor.redact(text) == "Authorization: Bearer *** and *** and *** and ***"
    assert redactor.redact("sk-short and a task-list") == "sk-short and a task-list"


def test_longer_secret_masked_whole() -> None:
    redactor = Redactor(["abcdef", "abcdef-extended"], shapes=False)
    assert redactor.redact("x abcdef-extended y abcdef") == "x *** y ***"
    assert Redactor([], shapes=False).redact("nothing") == "nothing"


def test_redact_file_in_place(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    log.write_text("error: key hunter22-long rejected\n", encoding="utf-8")
    redactor = Redactor.from_env(ENV)
    assert redactor.redact_file(log) is True
    assert log.read_text(encoding="utf-8") == "error: key *** rejected\n"
    assert redactor.redact_file(log) is False
    assert redactor.redact_file(tmp_path / "absent.log") is False


def test_fast_on_long_logs() -> None:
    redactor = Redactor.from_env({f"K{i}_API_KEY": f"secret-value-{i:04d}" for i in range(50)})
    text = (
        "ordinary log line with nothing to hide, 0123456789 abcdef\n" * 80_000
    ) + "secret-value-0042"
    start = time.perf_counter()
    clean = redactor.redact(text)
    assert time.perf_counter() - start < 10  # linear, not a pass per key per line (loaded CI)
    assert clean.endswith("***") and "secret-value" not in clean


def test_short_secrets_are_masked_as_whole_words_only() -> None:
    redactor = Redactor.from_env({"SHORT_TOKEN": "ab12", "GITHUB_TOKEN": "none"})
    text = "Bearer ab12; url ?t=ab12&x=1; id xab12y, ab123, sha 9ab12f; none set"
    assert (
        redactor.redact(text)
        == "Bearer ***; url ?t=***&x=1; id xab12y, ab123, sha 9ab12f; none set"
    )
    assert redactor.redact_bytes(text.encode()) == redactor.redact(text).encode()


def test_secrets_too_short_to_mask_are_named_in_one_warning_without_their_values() -> None:
    from uet_doit.tools.redact import short_secret_warning, unmaskable_secrets

    assert unmaskable_secrets(ENV) == ["TINY_SECRET"]
    warning = short_secret_warning({**ENV, "PIN_PASSWORD": "Q7"})
    assert warning is not None
    assert "PIN_PASSWORD, TINY_SECRET are shorter than 3 characters" in warning
    assert "Q7" not in warning
    assert short_secret_warning({"GITHUB_TOKEN": "none", "X_API_KEY": "long-enough"}) is None


def test_reported_values_are_redacted_at_any_depth() -> None:
    """What a tool writes to UET_RESULT_FILE or a callable returns, before it is stored."""
    from dataclasses import dataclass
    from typing import NamedTuple

    from uet_doit.tools.redact import redact_result

    class Pair(NamedTuple):
        name: str
        value: str

    @dataclass(frozen=True)
    class Report:
        notes: str
        cost: float

    reported = {
        "model": "gpt-4o hunter22-long",
        "cost_usd": 0.25,
        "tokens": 10,
        "ok": True,
        "missing": None,
        "notes": ["called with ghtoken-value-1", {"header": "Bearer sk-ant-" + "x" * 20}],
        "hunter22-long": ("as a key", Pair("k", "pa$$w(rd)+")),
        "seen": {"abc"},
        "raw": b"bytes hunter22-long",
        "report": Report(notes="saw hunter22-long", cost=1.5),
    }
    clean = redact_result(reported, ENV)
    assert clean == {
        "model": "gpt-4o ***",
        "cost_usd": 0.25,
        "tokens": 10,
        "ok": True,
        "missing": None,
        "notes": ["called with ***", {"header": "Bearer ***"}],
        "***": ("as a key", Pair("k", "***")),
        "seen": {"***"},
        "raw": b"bytes ***",
        "report": Report(notes="saw ***", cost=1.5),
    }
    assert isinstance(clean["***"][1], Pair)
    assert reported["model"] == "gpt-4o hunter22-long"  # the original is left as it was


def _random_log(rng: random.Random, secrets: list[str], size: int) -> bytes:
    words = ["ok", "x", "é", "Authorization:", "\n", "ab1", "GET /v1", "sk-", "AKIA", "  "]
    words += secrets * 3 + ["sk-ant-" + "Q" * 30, "AKIA" + "B" * 16, "ghp_" + "z" * 40]
    out: list[str] = []
    while sum(map(len, out)) < size:
        out.append(rng.choice(words) + rng.choice(["", " ", "-", "=", "x", "\n"]))
    return "".join(out).encode()


@pytest.mark.parametrize("chunk", [7, 64, 1000, 4096])
def test_streamed_file_redaction_equals_redacting_the_whole_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Secrets cut by any chunk boundary are masked exactly as in one pass over the text."""
    monkeypatch.setattr(redact, "CHUNK_BYTES", chunk)
    secrets = ["hunter22-long", "pa$$w(rd)+", "ab12", "x" * 300]
    redactor = Redactor(secrets)
    rng = random.Random(chunk)
    for n in range(5):
        data = _random_log(rng, secrets, 20_000)
        log = tmp_path / f"{n}.log"
        log.write_bytes(data)
        expected = redactor.redact_bytes(data)
        assert redactor.redact_file(log) is (expected != data)
        assert log.read_bytes() == expected
        assert b"hunter22" not in expected


def test_secret_across_a_default_chunk_boundary(tmp_path: Path) -> None:
    secret = "hunter22-long"
    log = tmp_path / "big.log"
    head = b"a" * (redact.CHUNK_BYTES - 5)
    log.write_bytes(head + secret.encode() + b"\n" + b"b" * redact.CHUNK_BYTES)
    assert Redactor([secret]).redact_file(log) is True
    assert log.read_bytes() == head + b"***\n" + b"b" * redact.CHUNK_BYTES


def test_rewrite_is_atomic_and_a_clean_log_is_left_untouched(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    log.write_bytes(b"nothing secret here\n" * 1000)
    log.chmod(0o640)
    before = log.stat()
    redactor = Redactor.from_env(ENV)
    assert redactor.redact_file(log) is False
    assert log.stat().st_ino == before.st_ino and log.stat().st_mtime_ns == before.st_mtime_ns
    log.write_bytes(b"line\n" * 1000 + b"key hunter22-long\n")
    reader = log.open("rb")  # a reader holding the old file still sees all of it
    assert redactor.redact_file(log) is True
    assert reader.read().endswith(b"key hunter22-long\n")
    reader.close()
    assert log.read_bytes() == b"line\n" * 1000 + b"key ***\n"
    assert log.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.log"]  # no temp file left


@pytest.mark.slow
def test_memory_stays_bounded_on_a_large_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old redact_file read the whole log: 2x its size in memory whenever a key was set.
    Now memory follows the chunk size (a few chunks per pass), not the log's size."""
    monkeypatch.setattr(redact, "CHUNK_BYTES", 64 * 1024)
    log = tmp_path / "big.log"
    line = b"ordinary output line, nothing to see 0123456789 hunter22-long\n"
    with log.open("wb") as fh:
        for _ in range(8):
            fh.write(line * (1024 * 1024 // len(line)))
    tracemalloc.start()
    try:
        assert Redactor.from_env(ENV).redact_file(log) is True
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * redact.CHUNK_BYTES < log.stat().st_size / 4
    assert b"hunter22" not in log.read_bytes()


def test_log_over_the_cap_keeps_head_and_tail_and_marks_the_cut(tmp_path: Path) -> None:
    log = tmp_path / "long.log"
    log.write_text("".join(f"line {i:06d} hunter22-long\n" for i in range(100_000)))
    size = log.stat().st_size
    assert Redactor.from_env(ENV).redact_file(log, max_bytes=64 * 1024) is True
    text = log.read_text()
    assert len(text.encode()) <= 64 * 1024
    lines = text.splitlines()
    assert lines[0] == "line 000000 ***" and lines[-1] == "line 099999 ***"
    marker = [ln for ln in lines if ln.startswith("[uet: ")]
    assert len(marker) == 1
    assert f"({size / 1024 / 1024:.1f} MB was over max_log_bytes, 64.0 KB)" in marker[0]
    # the head ends and the tail starts on whole lines
    cut = lines.index(marker[0])
    assert lines[cut - 1].endswith("***") and lines[cut + 1].startswith("line ")
    assert "hunter22" not in text


def test_cut_never_leaves_part_of_a_secret(tmp_path: Path) -> None:
    """No line end near the cut: the head would end inside a key without the extra check."""
    secret = "Zq9-SECRET-VALUE-77"
    max_bytes = 8192
    keep = (max_bytes - 256) // 2
    for offset in range(-len(secret), 2):
        log = tmp_path / "one-line.log"
        body = bytearray(b"y" * 40_000)
        body[keep + offset : keep + offset + len(secret)] = secret.encode()
        tail_at = len(body) - keep + offset
        body[tail_at : tail_at + len(secret)] = secret.encode()
        log.write_bytes(bytes(body))
        assert Redactor([secret]).redact_file(log, max_bytes=max_bytes) is True
        text = log.read_bytes()
        assert len(text) <= max_bytes
        for k in range(4, len(secret) + 1):
            assert secret[:k].encode() not in text and secret[-k:].encode() not in text, offset


def test_cap_log_without_secrets(tmp_path: Path) -> None:
    from uet_doit.tools.redact import cap_log

    log = tmp_path / "out.log"
    log.write_bytes(b"x" * 10_000)
    assert cap_log(log, max_bytes=20_000) is False  # under the cap: untouched
    log.write_bytes(b"0123456789\n" * 10_000)
    assert cap_log(log, max_bytes=5_000) is True
    data = log.read_bytes()
    assert data.startswith(b"0123456789\n") and data.endswith(b"0123456789\n")
    assert b"cut from the middle of this log" in data and len(data) <= 5_000


def test_benchmark_script_runs_and_leaves_no_key(tmp_path: Path) -> None:
    """benchmarks/redact_large_log.py at 2 MB: kept runnable, not a performance check."""
    import subprocess
    import sys

    from support import REPO

    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "redact_large_log.py"),
            *("--mb", "2", "--only", "new", "new+cap", "--dir", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[2:]]
    assert [row[0] for row in rows] == ["new", "new+cap"]
    assert all(row[-1] == "0" for row in rows)  # keys left


def test_messages_and_logs_mask_the_same_text() -> None:
    """A message (str) and a log (bytes) agree, even next to non-ASCII letters."""
    redactor = Redactor(["hunter22-long", "ab12"])
    text = "é" + "sk-ant-" + "Q" * 30 + " ñab12 ab12é hunter22-long"
    assert redactor.redact(text).encode() == redactor.redact_bytes(text.encode())
    assert "Q" * 30 not in redactor.redact(text)
