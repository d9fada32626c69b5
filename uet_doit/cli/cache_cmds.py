"""`uet cache` and `uet why`: registered by the step-cache modules as they are, imported only
when used (or for help); arguments they leave undescribed are described here."""

from __future__ import annotations

from uet_doit.cli.parsing import Subcommands, fill_help

_CACHE_HELP = {
    "action": "stats (size and hits), prune (old entries) or verify (damaged entries)",
    "json": "print the result as JSON, for scripts",
}
_WHY_HELP = {
    "step": "a step id of the bundle",
    "json": "print the reasons as JSON, for scripts",
}


def register_cache(sub: Subcommands) -> None:
    from uet_doit.cache import commands  # lazy: start-up time

    commands.register(sub)
    fill_help(sub.choices["cache"], _CACHE_HELP)


def register_why(sub: Subcommands) -> None:
    from uet_doit.observe import why  # lazy: start-up time

    why.register(sub)
    fill_help(sub.choices["why"], _WHY_HELP)
