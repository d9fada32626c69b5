"""Which steps the cache serves: the bundle's `cache:` settings and the run's flags. Pure.

`cache:` is read nearest first (step, workstream, bundle). Without one, AI steps are cached
once a store is configured and shell, python and pytest steps are not (their results are
cheap and often depend on the machine); `--cache` turns it on for every step that does not
say `cache: false`, `--no-cache` turns it off everywhere.
"""

from __future__ import annotations

from enum import StrEnum

from uet_doit.bundle.model import Bundle, CacheOptions, Step, Workstream
from uet_doit.tools.adapters import tool_traits

#: a step whose outputs total more is not cached (`cache: {max_bytes: N}` changes it)
DEFAULT_CACHE_MAX_BYTES = 1 << 30


class CacheMode(StrEnum):
    OFF = "off"
    ON = "on"  # look up, and store what a run makes
    READ_ONLY = "read-only"  # look up only


class RunCacheFlag(StrEnum):
    """`uet run --cache / --no-cache`, or neither (the bundle and the defaults decide)."""

    DEFAULT = "default"
    ON = "on"
    OFF = "off"


def _mode_of(setting: CacheOptions | None) -> str | None:
    mode = setting.mode if setting is not None else None
    if mode is None:
        return None
    if mode == "read-only":
        return CacheMode.READ_ONLY
    return CacheMode.ON if mode else CacheMode.OFF


def declared_mode(bundle: Bundle, ws: Workstream, step: Step) -> str | None:
    """The nearest `cache:` mode the bundle sets for a step (None: none does)."""
    for setting in (step.cache, ws.cache, bundle.cache):
        mode = _mode_of(setting)
        if mode is not None:
            return mode
    return None


def max_bytes(bundle: Bundle, ws: Workstream, step: Step) -> int:
    """The nearest `cache: {max_bytes: N}`: a step whose outputs total more is not stored
    (or restored), so a huge output never fills a shared store or a reader's disk."""
    for setting in (step.cache, ws.cache, bundle.cache):
        if setting is not None and setting.max_bytes is not None:
            return setting.max_bytes
    return DEFAULT_CACHE_MAX_BYTES


def key_env(bundle: Bundle, ws: Workstream, step: Step) -> tuple[str, ...]:
    """The environment variables whose (hashed) values enter a step's key: every level's."""
    names: list[str] = []
    for setting in (bundle.cache, ws.cache, step.cache):
        if isinstance(setting, CacheOptions):
            names.extend(setting.env)
    return tuple(sorted(set(names)))


def step_mode(
    tool: str, declared: str | None, flag: str, store_configured: bool
) -> tuple[CacheMode, str]:
    """The cache mode of one step in one run, and why (said by `uet why`)."""
    if flag == RunCacheFlag.OFF:
        return CacheMode.OFF, "the run was started with --no-cache"
    if declared is not None:
        mode = CacheMode(declared)
        spelled = {CacheMode.ON: "true", CacheMode.OFF: "false"}.get(mode, str(mode))
        return mode, f"the bundle says cache: {spelled}"
    if flag == RunCacheFlag.ON:
        return CacheMode.ON, "the run was started with --cache"
    if not tool_traits(tool).cached_by_default:
        return CacheMode.OFF, (
            f"{tool} steps are cached only when asked (cache: true in the bundle, or --cache)"
        )
    if not store_configured:
        return CacheMode.OFF, (
            "no cache store is configured (--cache-store URL, UET_CACHE_STORE, cache_store "
            "in PROJECT_PROFILE.yaml), and neither the bundle nor --cache asks for the local one"
        )
    return CacheMode.ON, f"{tool} steps are cached once a store is configured"
