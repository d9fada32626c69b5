"""Bundle commands as argv: a list runs as is, a string is a shell line (trusted, like make)."""

from __future__ import annotations


def command_argv(command: str | list[str]) -> list[str]:
    if isinstance(command, str):
        return ["sh", "-c", command]
    return list(command)
