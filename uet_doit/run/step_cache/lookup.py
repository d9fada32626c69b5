"""Computing a step's cache key where the run (or `uet why`, `--dry-run`) stands: the tool's
version asked once, its router settings, the files hashed once per content."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from uet_doit.cache.blobs import FileHasher
from uet_doit.errors import UetError
from uet_doit.run.step_cache.keys import StepKey, ToolFacts, step_key
from uet_doit.run.step_spec import StepSpec
from uet_doit.run.tool_setup import tool_setup
from uet_doit.tools.adapters import ROUTED_TOOL
from uet_doit.tools.routing import AdapterRegistry


class ToolVersions:
    """Each tool's version, asked once per run through its adapter (`aider --version`):
    an upgraded tool may write different files, so its version is part of every key."""

    def __init__(self, tools: AdapterRegistry, root: Path) -> None:
        self.tools = tools
        self.root = root
        self._known: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def get(self, tool: str) -> str | None:
        if tool == ROUTED_TOOL or self.tools.traits(tool).local:
            return None
        with self._lock:  # one question per tool, even when steps start together
            if tool not in self._known:
                self._known[tool] = self._ask(tool)
            return self._known[tool]

    def _ask(self, tool: str) -> str | None:
        try:
            adapter = self.tools.adapter(tool)
            env = {**os.environ, **self.tools.settings(tool).env}
        except UetError:
            return None
        return adapter.version(env, self.root)


class KeyMaker:
    """StepSpec -> StepKey for one project and one run."""

    def __init__(self, root: Path, tools: AdapterRegistry) -> None:
        self.root = root
        self.tools = tools
        self.versions = ToolVersions(tools, root)
        self.hasher = FileHasher(root)

    def facts(self, spec: StepSpec) -> ToolFacts:
        tool = spec.tool
        setup = tool_setup(spec, tool, self.tools)
        return ToolFacts(
            tool=tool,
            version=self.versions.get(tool),
            model=setup.model,
            options=setup.options,
            tool_env=setup.tool_env,
        )

    def key(
        self,
        spec: StepSpec,
        file_hash: Callable[[str], str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> StepKey:
        facts = self.facts(spec)
        env = {**(os.environ if environ is None else environ), **facts.tool_env, **spec.env}
        return step_key(spec, facts, env, file_hash or self.hasher)
