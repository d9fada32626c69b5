"""Standard output (and error) that survive their reader going away (`uet runs | head -1`).

Python ignores SIGPIPE, so a write after the reader closed the pipe raises BrokenPipeError in
whatever happened to print: a traceback for `uet list`, and a run stopped half way for
`uet run`. Once the pipe is gone, output goes to /dev/null (Python's documented advice) and the
command carries on to its own outcome: a run records and exits as if nobody had been watching.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, TextIO, cast


class PipeSafeStream:
    """A text stream proxy that turns EPIPE into "discard from now on"."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._inner.write(text)
            except BrokenPipeError:
                self._discard()
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._inner.flush()
            except BrokenPipeError:
                self._discard()

    def _discard(self) -> None:
        """Point the descriptor at /dev/null, so buffered bytes and later flushes go there."""
        self.reader_gone = True
        try:
            fd = self._inner.fileno()
        except (AttributeError, OSError, ValueError):
            return  # not a real file (a StringIO in tests): nothing is left to redirect
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextmanager
def pipe_safe_output() -> Iterator[None]:
    """sys.stdout and sys.stderr wrapped for the duration of one command, then put back."""
    originals = sys.stdout, sys.stderr
    wrapped = PipeSafeStream(originals[0]), PipeSafeStream(originals[1])
    sys.stdout, sys.stderr = cast(TextIO, wrapped[0]), cast(TextIO, wrapped[1])
    try:
        yield
    finally:
        for name, original, proxy in zip(("stdout", "stderr"), originals, wrapped, strict=True):
            if getattr(sys, name) is cast(TextIO, proxy):
                setattr(sys, name, original)
            if proxy.reader_gone:
                with suppress(BrokenPipeError, ValueError):
                    original.flush()  # now into /dev/null: nothing left for exit to choke on
