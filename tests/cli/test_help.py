"""`uet --help` and every command's `-h`: each option and positional says what it is for,
RUN_ID is spelt one way, the exit codes are listed, and an empty project says so."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from uet_doit.cli.main import build_parser

from support import Project, quick_first


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"uet": parser, **{f"uet {name}": p for name, p in sub.choices.items()}}


def test_every_command_option_and_positional_has_a_description() -> None:
    parsers = commands()
    assert len(parsers) >= 15  # the command list below is not accidentally empty
    missing = [
        f"{prog}: {'/'.join(a.option_strings) or a.metavar or a.dest}"
        for prog, parser in parsers.items()
        for a in parser._actions
        if not a.help or a.help == argparse.SUPPRESS or not a.help.strip()
    ]
    assert missing == []
    sub = next(a for a in parsers["uet"]._actions if isinstance(a, argparse._SubParsersAction))
    assert all(choice.help for choice in sub._choices_actions)


def test_run_ids_are_spelt_one_way() -> None:
    spellings = set()
    for prog, parser in commands().items():
        usage = parser.format_usage()
        spellings |= set(re.findall(r"\b(run[_-]?id|RUN[_-]?ID)\b", usage, re.IGNORECASE))
        for action in parser._actions:
            if "run" in action.dest and "id" in action.dest:
                assert action.metavar and "RUN_ID" in str(action.metavar), prog
    assert spellings == {"RUN_ID"}


def test_help_lists_exit_codes() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "uet_doit", "--help"], capture_output=True, text=True, check=True
    ).stdout
    codes = out[out.index("exit codes:") :]
    for code, words in [("0", "done"), ("1", "failed"), ("2", "runtime"), ("3", "bad bundle"),
                        ("4", "budget"), ("130", "interrupted")]:  # fmt: skip
        assert re.search(rf"^\s+{code}\s+.*{words}", codes, re.MULTILINE), code
    for command in ("run", "status", "cost", "convert", "import", "graph", "report", "route"):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command


def test_runs_in_a_project_that_never_ran(project: Project) -> None:
    res = project.uet("runs")
    assert res.code == 0
    assert "no runs recorded" in res.out and "uet run FILE" in res.out
    assert project.uet("status").code == 3
    assert "no runs recorded" in project.uet("status", "--json").err
    assert project.uet("breakers").out.startswith("no breakers recorded")
    assert not (project.root / ".uet").exists()  # looking does not create state


@pytest.mark.parametrize(
    "command", quick_first(["run", "status", "cost", "convert", "import", "bootstrap"])
)
def test_command_help_is_its_own(command: str) -> None:
    argv = [sys.executable, "-m", "uet_doit", command, "-h"]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert out.returncode == 0
    assert out.stdout.startswith(f"usage: uet {command}")
