"""The argparse pieces every command module shares: usage errors exit 3, intermixed
positionals for `uet run FILE [options] [TASK...]`, and the exit codes shown in help."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, NoReturn, TypeAlias

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

#: shown by `uet --help` and `uet run --help`; the same codes as doit, plus paused and Ctrl-C
EXIT_CODES = """\
exit codes:
  0    done: every step asked for succeeded or was up to date
  1    a step failed, or a completion criterion is unmet
  2    runtime error (state store, doit, a tool that could not be started)
  3    bad bundle or bad command line (nothing was run)
  4    paused: a budget ran out; raise it and run again
  130  interrupted (Ctrl-C or SIGTERM); continue with `uet run FILE --resume RUN_ID`
"""


class UetParser(argparse.ArgumentParser):
    """Usage errors exit 3 (doit's "user error"), not argparse's 2 (our "runtime error"), and
    show the usage of the command that was mistyped."""

    #: positionals may come after options (`uet run b.yaml -n 2 count`)
    intermixed = False
    _parsing_intermixed = False

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(3, f"{self.prog}: error: {message}\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if not self.intermixed or self._parsing_intermixed:
            return super().parse_known_args(args, namespace)
        # parse_known_intermixed_args calls parse_known_args twice: let those through
        self._parsing_intermixed = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing_intermixed = False


def add_log_level(parser: argparse.ArgumentParser) -> None:
    """`--log-level`, on `uet` and on `uet run` alike (SUPPRESS: neither hides the other)."""
    parser.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        metavar="LEVEL",
        help="DEBUG, INFO or WARNING: uet's decisions on stderr (also UET_LOG_LEVEL)",
    )


def add_command(
    sub: Subcommands, name: str, help: str, description: str | None = None, **kwargs: Any
) -> UetParser:
    """A subcommand whose `-h` starts with its one-line help (and any longer description),
    wrapped here so that it reads the same under any help formatter."""
    text = help[:1].upper() + help[1:] + "." + (f" {description}" if description else "")
    parser = sub.add_parser(name, help=help, description=textwrap.fill(text, 79), **kwargs)
    assert isinstance(parser, UetParser)
    return parser


def fill_help(parser: argparse.ArgumentParser, helps: dict[str, str]) -> None:
    """Describe, by destination, the arguments a module registered without help (its own
    text wins when it has one): every argument of `uet` says what it is for."""
    for action in parser._actions:
        if not action.help and action.dest in helps:
            action.help = helps[action.dest]
