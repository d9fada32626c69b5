"""Commands that write bundles or project files: import, bootstrap (convert: convert_cmd)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from uet_doit.bundle.fields import ID_PATTERN
from uet_doit.cli import render
from uet_doit.cli.parsing import Subcommands, add_command
from uet_doit.errors import EXIT_OK, UetError, UsageError


def register(sub: Subcommands) -> None:
    p = add_command(
        sub,
        "import",
        "combine legacy workstream JSON files into one bundle",
        "Each file holds one legacy workstream object or a list of them, optionally "
        "after a /* comment */ line. Unreadable files are reported and skipped.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="legacy workstream JSON files")
    p.add_argument("-o", "--output", metavar="OUT", help="*.json or *.yaml (default: stdout)")
    p.add_argument("--bundle-id", help="bundle id (default: legacy-import)")
    p.set_defaults(handler=import_legacy)

    p = add_command(
        sub,
        "bootstrap",
        "detect the project's tools; write PROJECT_PROFILE.yaml, router_config.json, dodo.py",
        "Safe to re-run: identical files are left alone, edited ones are kept "
        "(a diff is shown) unless --force.",
    )
    p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="project folder (default: .)")
    p.add_argument("--force", action="store_true", help="overwrite files that differ")
    p.set_defaults(handler=bootstrap)


def import_legacy(args: argparse.Namespace) -> int:
    from uet_doit.plans.convert import check_bundle  # lazy: start-up time
    from uet_doit.plans.legacy_import import import_files  # lazy: start-up time

    if args.bundle_id is not None and not re.match(ID_PATTERN, args.bundle_id):
        raise UsageError(
            f"--bundle-id {args.bundle_id!r} is not a valid id",
            "use letters, digits, '-', '_', '.'",
        )
    bundle, problems, warnings = import_files(list(args.files), args.bundle_id)
    if problems:
        print(render.import_skipped(problems), file=sys.stderr)
    if bundle is None:
        raise UsageError(
            f"nothing imported from {len(args.files)} file(s)",
            "each file must be JSON holding a workstream object (with `id` and `tasks`) or a list",
        )
    check_bundle(bundle, args.output or "<import>")
    emit_bundle(bundle, args.output)
    print(render.import_report(bundle, problems, warnings, args.output), file=sys.stderr)
    return EXIT_OK


def emit_bundle(data: dict[str, Any], output: str | None) -> None:
    """The bundle to the file `output` names (JSON or YAML by its extension), else JSON on
    stdout."""
    from uet_doit.plans.convert import bundle_text, write_bundle  # lazy: start-up time

    if output is None:
        sys.stdout.write(bundle_text(data))
    else:
        write_bundle(data, output)


def bootstrap(args: argparse.Namespace) -> int:
    from uet_doit.plans.bootstrap import bootstrap as write_project_files  # lazy: start-up time
    from uet_doit.tools.adapters import ai_tools  # lazy: start-up time

    root = Path(args.dir)
    try:
        report, profile = write_project_files(root, force=args.force)
    except PermissionError as exc:
        raise UetError(f"cannot write in {root}: {exc.strerror}") from exc
    print(render.bootstrap_report(report, profile["ai_tools"]["available"], ai_tools()))
    return EXIT_OK
