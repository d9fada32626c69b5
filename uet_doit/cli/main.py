"""`uet`: the parser and the dispatch. Each group of commands lives in its own module
(arguments -> library calls -> `cli.render` -> exit code); heavy imports happen inside the
command that needs them, so `uet --help` and shell completion stay fast."""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

from uet_doit.cli.parsing import EXIT_CODES, UetParser, add_log_level
from uet_doit.cli.streams import pipe_safe_output
from uet_doit.errors import EXIT_INTERRUPTED, EXIT_USAGE, UetError
from uet_doit.version import __version__

#: command modules, in the order `uet --help` lists their commands; each has `register(sub)`
#: and imports the library only inside the command that needs it
COMMAND_MODULES = (
    "uet_doit.cli.bundle_cmds",
    "uet_doit.cli.run_cmd",
    "uet_doit.cli.state_cmds",
    "uet_doit.cli.plan_cmds",
    "uet_doit.cli.provenance",
    "uet_doit.cli.convert_cmd",
    "uet_doit.cli.cost_cmds",
    "uet_doit.cli.cache_cmds",
)


def build_parser() -> argparse.ArgumentParser:
    """The whole parser: every command, its arguments and their help."""
    parser = UetParser(
        prog="uet",
        description="Run workstream bundles as incremental, parallel doit tasks.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    add_log_level(parser)
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="run `uet COMMAND -h` for its options"
    )
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _version() -> str:
    return f"uet-doit {__version__}"


#: commands that work on the folder or files they are given, not on a project's state
_NOT_IN_A_PROJECT = frozenset({"schema", "convert", "import", "bootstrap", "validate"})


def _enter_project(args: argparse.Namespace) -> None:
    """Run from the project root, found upward as git does (the nearest folder holding
    `.uet/`, from here or from the bundle's folder); a bundle path given relative to the
    current folder keeps pointing at the same file."""
    import os
    from pathlib import Path

    from uet_doit.state.project import find_root  # lazy: start-up time

    here = Path.cwd()
    bundle = getattr(args, "bundle", None)
    root = find_root(here, Path(bundle) if isinstance(bundle, str | Path) else None)
    if root.resolve() == here.resolve():
        return
    if isinstance(bundle, str | Path):
        args.bundle = type(bundle)(Path(bundle).resolve())
    os.chdir(root)


def _dispatch(argv: list[str]) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    command = getattr(args, "command", None)
    if extras:
        # argparse reports them from the top parser; the usage of the command is what helps
        commands = next(
            a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)
        )
        target = commands.get(command, parser) if command else parser
        target.error(f"unrecognized arguments: {' '.join(extras)}")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    if command not in _NOT_IN_A_PROJECT:
        _enter_project(args)
    try:
        from uet_doit.tools.debug_log import configure  # lazy: start-up time

        configure(getattr(args, "log_level", None))
        code: int = handler(args)
    except UetError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


#: full collections after this many middle-generation ones (Python's default is 10)
FULL_GC_EVERY = 1000


def main(argv: Sequence[str] | None = None) -> int:
    # A command builds its bundle, tasks and rows once and keeps them to the end; full
    # collections that rescan them were 40% of a 10k-step no-op. Young cycles are still
    # collected as often as by default.
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_GC_EVERY)
    with pipe_safe_output():
        return _dispatch(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
