"""Tool adapters, found by name: built-ins, router_config.json custom adapters, entry points."""

from __future__ import annotations

import importlib

from uet_doit.tools.adapters.base import Invocation, StepRequest, ToolAdapter, ToolResult

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


def builtin_tool_names() -> frozenset[str]:
    return frozenset(BUILTIN_ADAPTERS)


def load_builtin(name: str) -> ToolAdapter:
    module_name, _, class_name = BUILTIN_ADAPTERS[name].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    adapter: ToolAdapter = cls()
    return adapter


__all__ = [
    "BUILTIN_ADAPTERS",
    "Invocation",
    "StepRequest",
    "ToolAdapter",
    "ToolResult",
    "builtin_tool_names",
    "load_builtin",
]
