"""`UET_LOG_LEVEL=DEBUG` (or `uet --log-level debug`): uet's decisions on stderr.

Modules log through `logging.getLogger(__name__)` under the `uet_doit` logger, which stays
silent (a NullHandler) until `configure` gives it a stderr handler. Every record passes the
redactor first: a decision may quote a command or an error message that holds a key.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from uet_doit.errors import UsageError
from uet_doit.tools.redact import Redactor

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
ENV = "UET_LOG_LEVEL"

_ROOT = logging.getLogger("uet_doit")
_ROOT.addHandler(logging.NullHandler())
_HANDLER_NAME = "uet-stderr"


class RedactingFilter(logging.Filter):
    """Masks secrets (values of *_API_KEY, *_TOKEN, ... variables and key shapes)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__()
        self._redactor = Redactor.cached_for(env)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redactor.redact(record.getMessage())
        record.args = None
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record comes (tests and pipes swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def level_of(value: str, where: str) -> int:
    """A level name (any case) as logging's number; a usage error names the choices."""
    name = value.strip().upper()
    if name not in LEVELS:
        msg = f"{where}: unknown log level {value!r}"
        raise UsageError(msg, f"use one of {', '.join(LEVELS)} (case does not matter)")
    return int(getattr(logging, name))


def configure(level: str | None = None, env: Mapping[str, str] | None = None) -> None:
    """`--log-level` beats UET_LOG_LEVEL; neither leaves uet as quiet as before."""
    env = os.environ if env is None else env
    for old in list(_ROOT.handlers):
        if old.get_name() == _HANDLER_NAME:
            _ROOT.removeHandler(old)
    if level is not None:
        number = level_of(level, "--log-level")
    elif env.get(ENV):
        number = level_of(env[ENV], ENV)
    else:
        return
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(env))
    _ROOT.addHandler(handler)
    _ROOT.setLevel(number)
    _ROOT.propagate = False
