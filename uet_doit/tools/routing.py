"""router_config.json: which tool a step uses, settings per tool, and finding adapters by name.

A step whose tool is `auto` is routed: routes whose `task_kind` equals the step's come first,
then routes whose `file_patterns` match one of its files, then `default_tools`; the tools of
every match, in that order and without the unavailable ones, are the fallback chain. When
nothing is configured for the step, the installed AI tools are, in `ai_tools()` order.
Adapters are looked up as built-ins, then `custom_adapters`, then the `uet_doit.tools.adapters`
entry-point group; a broken custom adapter is a UsageError for that tool only.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError

from uet_doit.bundle.effective import effective_tool
from uet_doit.bundle.fields import Strict
from uet_doit.bundle.known_tools import KnownTools
from uet_doit.bundle.model import Bundle, Notify
from uet_doit.errors import UsageError
from uet_doit.tools.adapters import (
    BUILTIN_ADAPTERS,
    ROUTED_TOOL,
    ToolAdapter,
    ToolTraits,
    ai_tools,
    builtin_tool_names,
    load_builtin,
    tool_traits,
)
from uet_doit.tools.adapters.agent import AgentAdapter
from uet_doit.tools.prices import OVERRIDE_SOURCE, LayeredPrices, ModelPrice, forecast_prices

ROUTER_CONFIG_FILE = "router_config.json"
ENTRY_POINT_GROUP = "uet_doit.adapters"  # the plugin group: a public name, kept stable
_PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
_FIX_HINT = (
    f"fix {ROUTER_CONFIG_FILE} at the places listed; its keys are routes, default_tools, "
    "tools, custom_adapters, prices and notify"
)


class Route(Strict):
    task_kind: str | None = None
    file_patterns: list[str] = Field(default_factory=list)
    tools: list[str] = Field(min_length=1)
    priority: Literal["critical", "high", "medium", "low"] | None = None


class ToolSettings(Strict):
    """Per-tool settings; `args` are extra command-line arguments for the tool."""

    model: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    max_parallel: int | None = Field(None, ge=1)
    timeout_seconds: float | None = Field(None, gt=0)
    stall_timeout_seconds: float | None = Field(None, gt=0)
    max_fix_attempts: int | None = Field(None, ge=0, le=10)


class CustomAdapter(Strict):
    module: str = Field(pattern=r"^[A-Za-z_][\w.]*$")
    class_name: str = Field(alias="class", pattern=r"^[A-Za-z_][\w.]*$")


class PriceEntry(Strict):
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class RouterConfig(Strict):
    routes: list[Route] = Field(default_factory=list)
    default_tools: list[str] = Field(default_factory=list)
    tools: dict[str, ToolSettings] = Field(default_factory=dict)
    custom_adapters: dict[str, CustomAdapter] = Field(default_factory=dict)
    prices: dict[str, PriceEntry] = Field(default_factory=dict)
    notify: Notify | None = None
    _source: str = PrivateAttr(ROUTER_CONFIG_FILE)

    @property
    def source(self) -> str:
        """The file this came from, for messages."""
        return self._source

    def tool(self, name: str) -> ToolSettings:
        return self.tools.get(name) or ToolSettings()


def _json_path(loc: Iterable[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "(top level)"


def _with_source(config: RouterConfig, path: Path) -> RouterConfig:
    config._source = str(path)
    return config


def load_router_config(project_root: Path) -> RouterConfig:
    """`<project_root>/router_config.json`, or an empty config when there is none."""
    path = project_root / ROUTER_CONFIG_FILE
    if not path.exists():
        return _with_source(RouterConfig(), path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise UsageError(f"{path}: {where}: invalid JSON: {exc.msg}", _FIX_HINT) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: (top level): must be a JSON object", _FIX_HINT)
    try:
        config = _with_source(RouterConfig.model_validate(data), path)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where, msg = _json_path(err["loc"]), err["msg"]
            if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
                close = difflib.get_close_matches(str(err["loc"][0]), RouterConfig.model_fields)
                msg = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
            problems.append(f"  {where}: {msg}")
        msg = f"{path}: invalid router config:\n" + "\n".join(problems)
        raise UsageError(msg, _FIX_HINT) from None
    clashes = sorted(set(config.custom_adapters) & set(BUILTIN_ADAPTERS))
    if clashes:
        msg = f"{path}: custom_adapters.{clashes[0]}: has the name of a built-in tool"
        raise UsageError(
            msg, f"rename it; built-in tools are {', '.join(sorted(BUILTIN_ADAPTERS))}"
        )
    return config


@dataclass(frozen=True)
class RouteDecision:
    tools: list[str]  # first = the tool to use, the rest = fallbacks, in order
    reason: str


def _normalise(path: str) -> str:
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def pattern_matches(pattern: str, path: str) -> bool:
    """fnmatch where `*` crosses folders, `docs/**` matches the folder, `**/x` matches at top."""
    pattern, path = _normalise(pattern), _normalise(path)
    return (
        fnmatchcase(path, pattern)
        or (pattern.startswith("**/") and fnmatchcase(path, pattern[3:]))
        or (pattern.endswith("/**") and path == pattern[:-3])
    )


def route_step(
    task_kind: str | None,
    files: Iterable[str],
    config: RouterConfig,
    available: Callable[[str], bool],
    *,
    auto: bool = False,
) -> RouteDecision:
    """The tools for a step in fallback order, and why (for `uet route` and the logs).
    `auto`: the step names no tool, so with nothing configured for it any installed AI
    tool may take it (a step that names its tool gets no such fallbacks)."""
    files = list(files)
    ranked = sorted(
        enumerate(config.routes), key=lambda ir: _PRIORITY_RANK.get(ir[1].priority or "", 4)
    )
    matches: list[tuple[int, str]] = []
    if task_kind:
        matches += [(i, f"task_kind {task_kind!r}") for i, r in ranked if r.task_kind == task_kind]
    for i, route in ranked:
        if any(i == j for j, _ in matches):
            continue
        if not route.file_patterns:
            if not route.task_kind:
                matches.append((i, "catch-all route"))
            continue
        hit = next(
            ((p, f) for p in route.file_patterns for f in files if pattern_matches(p, f)), None
        )
        if hit:
            matches.append((i, f"file {hit[1]!r} matches {hit[0]!r}"))
    wanted = [t for i, _ in matches for t in config.routes[i].tools] + config.default_tools
    if not wanted and auto:  # nothing configured for it: any AI tool installed here may do it
        wanted = list(ai_tools())
    ordered = list(dict.fromkeys(wanted))
    tools = [t for t in ordered if available(t)]
    skipped = [t for t in ordered if t not in tools]
    if matches:
        index, why = matches[0]
        reason = f"{why} (routes[{index}])"
    elif config.default_tools:
        reason = "no route matches: default_tools"
    elif not auto:
        reason = (
            f"no route matches task_kind {task_kind!r} or the files, and no default_tools: add "
            f"a route to {ROUTER_CONFIG_FILE} or set tool_profile_id on the step"
        )
    elif tools:
        reason = (
            f"no route matches task_kind {task_kind!r} or the files, and no default_tools: "
            f"the installed AI tools in turn (add a route to {ROUTER_CONFIG_FILE} to choose)"
        )
    else:
        reason = (
            f"no route matches task_kind {task_kind!r} or the files, no default_tools, and no "
            f"AI tool ({', '.join(ai_tools())}) is installed: install one, add a route to "
            f"{ROUTER_CONFIG_FILE} or set tool_profile_id on the step"
        )
        skipped = []
    if skipped:
        reason += f"; skipped (unknown or not installed): {', '.join(skipped)}"
    return RouteDecision(tools=tools, reason=reason)


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def known_tool_names(config: RouterConfig) -> list[str]:
    """Built-ins, custom adapters of router_config.json, and installed plugins."""
    return sorted({*BUILTIN_ADAPTERS, *config.custom_adapters, *_entry_points()})


def known_tools(config: RouterConfig | None) -> KnownTools:
    """The tools a bundle may name with this router_config (None: the built-ins and `auto`),
    and which of them can review, from their adapters' traits (bundle checks are given
    these: the bundle knows no adapter)."""
    names = set(builtin_tool_names())
    if config is not None:
        names |= set(known_tool_names(config))
    return KnownTools(frozenset(names), frozenset(n for n in names if tool_traits(n).reviewer))


def default_known_tools() -> KnownTools:
    """`known_tools` of the router_config.json in the cwd."""
    config = None
    # a broken router_config.json is reported by `uet run`, which reads it
    with contextlib.suppress(Exception):
        config = load_router_config(Path.cwd())
    return known_tools(config)


def price_table(config: RouterConfig) -> LayeredPrices:
    """The one price chain: router_config.json `prices`, litellm's map when installed, the
    packaged table (actual costs and forecasts alike)."""
    overrides = {
        name: ModelPrice(p.input_per_mtok, p.output_per_mtok, OVERRIDE_SOURCE)
        for name, p in config.prices.items()
    }
    return forecast_prices(overrides)


def get_adapter(name: str, config: RouterConfig, project_root: Path) -> ToolAdapter:
    """The adapter for a tool name; UsageError (never a traceback) when it cannot be had."""
    from uet_doit.tools.adapters.custom import adapter_from, import_adapter  # lazy: start-up time

    adapter: ToolAdapter
    if name in BUILTIN_ADAPTERS:
        adapter = load_builtin(name)
    elif name in config.custom_adapters:
        spec = config.custom_adapters[name]
        origin = f"{config.source}: custom_adapters.{name}"
        adapter = import_adapter(name, spec.module, spec.class_name, project_root, origin)
    elif (ep := _entry_points().get(name)) is not None:
        where = f"tool {name!r} (entry point {ep.value} in group {ENTRY_POINT_GROUP})"
        try:
            obj: Any = ep.load()
        except Exception as exc:
            msg = f"{where}: cannot load: {type(exc).__name__}: {exc}"
            raise UsageError(msg, "reinstall the package that provides it") from None
        adapter = adapter_from(obj, name, ep.value, where)
    else:
        known = known_tool_names(config)
        close = difflib.get_close_matches(name, known, n=1)
        hint = (f"did you mean {close[0]!r}? " if close else "") + f"known: {', '.join(known)}"
        raise UsageError(f"unknown tool {name!r}", hint)
    if isinstance(adapter, AgentAdapter):
        adapter.prices = price_table(config)
    return adapter


def availability(
    config: RouterConfig, project_root: Path, path: str | None = None
) -> Callable[[str], bool]:
    """A `route_step` availability check: the adapter loads and its executable is on PATH."""
    seen: dict[str, bool] = {}

    def available(name: str) -> bool:
        if name not in seen:
            try:
                adapter = get_adapter(name, config, project_root)
            except UsageError:
                seen[name] = False
            else:
                exe = adapter.executable
                seen[name] = exe is None or shutil.which(exe, path=path) is not None
        return seen[name]

    return available


@dataclass(frozen=True)
class StepRoute:
    """Where one step of a bundle would go (`uet route`): its tools in fallback order."""

    step_id: str
    tools: list[str]  # the first is used, the rest are fallbacks
    reason: str
    available: bool  # False: the step cannot run here (no tool, or its tool is missing)


def route_bundle(
    bundle: Bundle, config: RouterConfig, available: Callable[[str], bool]
) -> list[StepRoute]:
    """Every step's route, in bundle order."""
    routes: list[StepRoute] = []
    for ws, step in bundle.steps():
        tool = effective_tool(bundle, ws, step)
        if tool != "auto":
            ok = available(tool)
            why = "set by tool_profile_id" + ("" if ok else f"; {tool} is unknown or not installed")
            routes.append(StepRoute(step.step_id, [tool], why, available=ok))
            continue
        files = [*step.context.files, *step.context.create_files]
        decision = route_step(step.task_kind or ws.kind, files, config, available, auto=True)
        routes.append(
            StepRoute(step.step_id, decision.tools, decision.reason, bool(decision.tools))
        )
    return routes


class AdapterRegistry:
    """One project's router_config.json and adapters, each loaded once per registry.

    A runner owns one registry; a remote worker builds one per project it serves. Nothing is
    cached at module level, so nothing needs resetting between projects or tests.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._config: RouterConfig | None = None
        self._adapters: dict[str, ToolAdapter] = {}

    @property
    def config(self) -> RouterConfig:
        if self._config is None:
            self._config = load_router_config(self.root)
        return self._config

    def adapter(self, name: str) -> ToolAdapter:
        found = self._adapters.get(name)
        if found is None:
            found = self._adapters[name] = get_adapter(name, self.config, self.root)
        return found

    def settings(self, name: str) -> ToolSettings:
        """router_config.json `tools.<name>`: model, args, env, max_parallel, timeout."""
        return self.config.tool(name)

    def traits(self, name: str) -> type[ToolTraits]:
        """A tool's traits in this project: a custom adapter's own class once it loads (one
        that cannot load has the defaults: running it says why)."""
        if name == ROUTED_TOOL or name in BUILTIN_ADAPTERS:
            return tool_traits(name)
        try:
            return type(self.adapter(name))
        except UsageError:
            return ToolTraits

    def resolver(self) -> Callable[[str, Path], ToolAdapter]:
        """An adapter resolver for run_attempt that reuses this registry's adapters."""
        return lambda name, _root: self.adapter(name)


def resolve_adapter(name: str, root: Path) -> ToolAdapter:
    """An adapter for one attempt in a process that holds no registry (e.g. a worker)."""
    return AdapterRegistry(root).adapter(name)
