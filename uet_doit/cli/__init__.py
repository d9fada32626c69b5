"""`uet`: command line -> library calls -> renderers -> exit code."""

from uet_doit.cli.main import main

__all__ = ["main"]
