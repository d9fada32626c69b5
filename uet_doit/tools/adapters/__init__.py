"""Tool adapters, found by name: built-ins, router_config.json custom adapters, entry points."""

from __future__ import annotations

import functools
import importlib

from uet_doit.tools.adapters.base import (
    Invocation,
    StepRequest,
    ToolAdapter,
    ToolResult,
    ToolTraits,
)

#: name -> "module:Class" of every built-in adapter, imported only when used
BUILTIN_ADAPTERS: dict[str, str] = {
    "shell": "uet_doit.tools.adapters.shell:ShellAdapter",
    "python": "uet_doit.tools.adapters.python_tool:PythonAdapter",
    "aider": "uet_doit.tools.adapters.aider:AiderAdapter",
    "claude": "uet_doit.tools.adapters.claude:ClaudeAdapter",
    "codex": "uet_doit.tools.adapters.codex:CodexAdapter",
    "gemini": "uet_doit.tools.adapters.gemini:GeminiAdapter",
    "pytest": "uet_doit.tools.adapters.pytest_tool:PytestAdapter",
}


#: the tool a step has when it names none: router_config.json picks one when it runs
ROUTED_TOOL = "auto"


class RoutedTool(ToolTraits):
    """`auto`'s traits: an AI tool that routing picks at run time; not itself a reviewer."""

    ai = True
    reviewer = False


def builtin_tool_names() -> frozenset[str]:
    """The tools every installation knows: the built-in adapters and `auto`."""
    return frozenset({*BUILTIN_ADAPTERS, ROUTED_TOOL})


def _builtin_class(name: str) -> type[ToolAdapter]:
    module_name, _, class_name = BUILTIN_ADAPTERS[name].partition(":")
    cls: type[ToolAdapter] = getattr(importlib.import_module(module_name), class_name)
    return cls


def load_builtin(name: str) -> ToolAdapter:
    return _builtin_class(name)()


@functools.cache
def tool_traits(name: str) -> type[ToolTraits]:
    """The traits of a tool by name, as its adapter class declares them: a built-in's, `auto`'s,
    else ToolTraits' defaults (a custom adapter this process has not loaded; a project's
    AdapterRegistry.traits reads its own class)."""
    if name == ROUTED_TOOL:
        return RoutedTool
    if name in BUILTIN_ADAPTERS:
        return _builtin_class(name)
    return ToolTraits


def ai_tools() -> tuple[str, ...]:
    """The built-in AI tools, in the order an `auto` step with no route tries them."""
    return tuple(name for name in BUILTIN_ADAPTERS if tool_traits(name).ai)


__all__ = [
    "BUILTIN_ADAPTERS",
    "ROUTED_TOOL",
    "Invocation",
    "RoutedTool",
    "StepRequest",
    "ToolAdapter",
    "ToolResult",
    "ToolTraits",
    "ai_tools",
    "builtin_tool_names",
    "load_builtin",
    "tool_traits",
]
