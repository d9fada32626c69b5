"""UET_LOG_LEVEL / --log-level: uet's decisions on stderr, redacted; silent without them."""

from __future__ import annotations

import logging

import pytest

from support import Project

SECRET = "sk-ant-" + "x7" * 20


def flaky_bundle() -> dict[str, object]:
    fail_once = "test -f marker && touch out.txt; touch marker"  # out.txt missing at first
    return {
        "bundle_id": "b",
        "workstreams": [
            {
                "ws_id": "W",
                "steps": [
                    {
                        "step_id": "flaky",
                        "command": fail_once,
                        "create_files": ["out.txt"],
                        "resilience": {
                            "max_retries": 1,
                            "initial_delay": 0,
                            "retry_on": ["missing_output"],
                        },
                    }
                ],
            }
        ],
    }


def test_debug_prints_scheduling_and_retry_decisions(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.bundle(flaky_bundle())
    monkeypatch.setenv("UET_LOG_LEVEL", "debug")
    res = project.uet("run", "bundle.yaml")
    assert res.code == 0, res.out + res.err
    assert "DEBUG uet_doit.run.doit.dispatch: dispatch b:flaky" in res.err
    retry = "DEBUG uet_doit.run.attempt_loop: retry flaky after missing_output (retry 1 of 1)"
    assert retry in res.err


def test_log_level_option_beats_the_environment_and_default_is_quiet(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.bundle(flaky_bundle())
    monkeypatch.setenv("UET_LOG_LEVEL", "DEBUG")
    res = project.uet("run", "bundle.yaml", "--log-level", "warning")
    assert res.code == 0 and "DEBUG" not in res.err
    monkeypatch.delenv("UET_LOG_LEVEL")
    (project.root / "out.txt").unlink()
    (project.root / "marker").unlink()
    res = project.uet("run", "bundle.yaml")
    assert res.code == 0 and "DEBUG" not in res.err


def test_a_bad_level_is_a_usage_error(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    project.bundle(flaky_bundle())
    res = project.uet("--log-level", "loud", "list", "bundle.yaml")
    assert res.code == 3
    assert "unknown log level 'loud'" in res.err and "DEBUG, INFO, WARNING" in res.err
    monkeypatch.setenv("UET_LOG_LEVEL", "chatty")
    res = project.uet("list", "bundle.yaml")
    assert res.code == 3 and "UET_LOG_LEVEL: unknown log level 'chatty'" in res.err


def test_debug_lines_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    from uet_doit.tools.debug_log import configure

    configure("DEBUG", {"ANTHROPIC_API_KEY": SECRET})
    try:
        logging.getLogger("uet_doit.run.policy").debug("calling with %s", SECRET)
    finally:
        configure(None, {})
    err = capsys.readouterr().err
    assert "calling with ***" in err and SECRET not in err
