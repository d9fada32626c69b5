"""`uet run FILE [options] [TASK...]`: the command line is checked against the bundle before
anything is recorded, and usage errors show the usage of the command that was mistyped."""

from __future__ import annotations

import pytest

from uet_doit.cli.main import main
from uet_doit.errors import EXIT_USAGE

from support import Project, shell_step


def bundle(project: Project) -> None:
    project.bundle(
        {
            "bundle_id": "demo-b",
            "workstreams": [
                {
                    "ws_id": "ws-a",
                    "steps": [
                        shell_step("first", "echo first >> order.txt"),
                        shell_step("count", "echo count >> order.txt", depends_on=["first"]),
                    ],
                    "test_gates": [{"type": "GATE_LINT", "command": "true"}],
                },
                {"ws_id": "ws-b", "steps": [shell_step("other", "echo other >> order.txt")]},
            ],
        }
    )


def runs(project: Project) -> str:
    return project.uet("runs").out


def test_task_names_may_follow_options(project: Project) -> None:
    bundle(project)
    res = project.uet("run", "bundle.yaml", "-n", "2", "count", "--reporter", "plain")
    assert res.code == 0, res.err
    assert project.lines("order.txt") == ["first", "count"]  # count and its dependency only


@pytest.mark.parametrize(
    "task", ["demo_b:count", "ws-a", "demo_b:ws-a", "ws-a.gate-1-lint", "demo_b"]
)
def test_every_kind_of_task_name_is_accepted(project: Project, task: str) -> None:
    bundle(project)
    res = project.uet("run", "bundle.yaml", task)
    assert res.code == 0, res.out + res.err
    assert "first" in project.lines("order.txt")


def test_unknown_task_is_a_usage_error_that_records_nothing(project: Project) -> None:
    bundle(project)
    res = project.uet("run", "bundle.yaml", "-c", "cuont", "nosuch")
    assert res.code == EXIT_USAGE
    assert "'cuont'" in res.err and "'nosuch'" in res.err and "bundle.yaml" in res.err
    assert "did you mean 'count'?" in res.err
    assert "resume" not in res.out + res.err
    assert "no runs recorded" in runs(project)
    assert not (project.root / "order.txt").exists()


def test_task_of_a_skipped_workstream_is_a_usage_error(project: Project) -> None:
    bundle(project)
    res = project.uet("run", "bundle.yaml", "other", "--skip-workstream", "ws-b")
    assert res.code == EXIT_USAGE
    assert "'other'" in res.err and "skip-workstream" in res.err
    assert "no runs recorded" in runs(project)


def test_run_without_arguments_names_only_the_file(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run"])
    assert exc.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "required: FILE\n" in err
    assert "usage: uet run" in err


@pytest.mark.parametrize(
    "argv",
    [
        ("run", "bundle.yaml", "--bogus"),
        ("status", "--bogus"),
        ("list", "bundle.yaml", "--bogus"),
        ("runs", "extra"),
    ],
)
def test_unknown_option_shows_the_usage_of_its_command(
    project: Project, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    bundle(project)
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    assert exc.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"usage: uet {argv[0]} ")
    assert f"unrecognized arguments: {argv[-1]}" in err
