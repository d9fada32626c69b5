"""Secrets never reach logs: env values of secret-named variables and key shapes are masked."""

from __future__ import annotations

import time
from pathlib import Path

from uet_doit.tools.redact import Redactor

ENV = {
    "OPENAI_API_KEY": "sk-proj-abcdefghijklmnopqrstuvwxyz123456",
    "GITHUB_TOKEN": "ghtoken-value-1",
    "MY_SECRET_THING": "hunter22-long",
    "DB_PASSWORD": "pa$$w(rd)+",
    "SHORT_TOKEN": "abc",
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/user",
}


def test_values_of_secret_variables_are_masked() -> None:
    redactor = Redactor.from_env(ENV)
    text = (
        "key=sk-proj-abcdefghijklmnopqrstuvwxyz123456 token ghtoken-value-1 "
        "pw pa$$w(rd)+ s hunter22-long short abc path /usr/bin:/bin"
    )
    assert redactor.redact(text) == "key=*** token *** pw *** s *** short abc path /usr/bin:/bin"
    assert redactor.secret_count == 4


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
    assert time.perf_counter() - start < 1.0
    assert clean.endswith("***") and "secret-value" not in clean
