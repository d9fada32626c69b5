"""router_config.json: loading, route decisions, adapter lookup, custom adapters, tool traits,
`uet route`."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from uet_doit.cli.main import main
from uet_doit.errors import UsageError
from uet_doit.tools import routing
from uet_doit.tools.adapters import ToolTraits, ai_tools, builtin_tool_names, tool_traits
from uet_doit.tools.adapters.aider import AiderAdapter
from uet_doit.tools.adapters.base import StepRequest
from uet_doit.tools.adapters.custom import LegacyAdapter
from uet_doit.tools.routing import (
    AdapterRegistry,
    RouterConfig,
    get_adapter,
    known_tool_names,
    load_router_config,
    pattern_matches,
    route_step,
)

GUIDE_ROUTES = {
    "routes": [
        {"task_kind": "docs", "file_patterns": ["*.md", "docs/**"], "tools": ["aider"],
         "priority": "high"},
        {"task_kind": "code_edit", "file_patterns": ["*.py"], "tools": ["aider", "cursor"],
         "priority": "high"},
        {"task_kind": "testing", "tools": ["pytest"], "priority": "critical"},
    ],
    "default_tools": ["claude", "codex"],
}  # fmt: skip


def write_config(root: Path, data: Any) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    (root / "router_config.json").write_text(text, encoding="utf-8")


def everything(_name: str) -> bool:
    return True


@pytest.fixture
def clean_modules() -> Iterator[None]:
    """Custom adapter modules of one test must not leak into the next."""
    before = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]
    sys.path[:] = path


def test_absent_config_is_empty(tmp_path: Path) -> None:
    config = load_router_config(tmp_path)
    assert config.routes == [] and config.default_tools == []
    assert route_step("docs", ["a.md"], config, everything).tools == []
    # nothing configured: any installed AI tool may take an `auto` step, in a fixed order
    auto = route_step("docs", ["a.md"], config, everything, auto=True)
    assert auto.tools == ["aider", "claude", "codex", "gemini"]
    none = route_step("docs", ["a.md"], config, lambda _t: False, auto=True)
    assert none.tools == [] and "no AI tool (aider, claude, codex, gemini)" in none.reason


def test_full_config_loads(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            **GUIDE_ROUTES,
            "tools": {"aider": {"model": "gpt-4o", "args": ["--map-tokens", "0"], "max_parallel": 2,
                                "timeout_seconds": 600, "env": {"X": "1"}, "max_fix_attempts": 1}},
            "custom_adapters": {"adr": {"module": "scripts.adr", "class": "Adr"}},
            "prices": {"my-model": {"input_per_mtok": 1, "output_per_mtok": 2}},
            "notify": {"command": ["notify-send", "uet"]},
            "$schema": "ignored",
        },
    )  # fmt: skip
    config = load_router_config(tmp_path)
    assert config.tool("aider").max_parallel == 2 and config.tool("nope").max_parallel is None
    assert config.custom_adapters["adr"].class_name == "Adr"
    assert config.source == str(tmp_path / "router_config.json")
    assert "adr" in known_tool_names(config)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"routes": [', "line 1, column"),
        ({"routes": [{"task_kind": "docs"}]}, "routes[0].tools: Field required"),
        ({"tools": {"aider": {"max_parallel": 0}}}, "tools.aider.max_parallel"),
        ({"rootes": []}, "rootes: unknown key (did you mean 'routes'?)"),
        ({"custom_adapters": {"x": {"module": "m"}}}, "custom_adapters.x.class"),
        ({"custom_adapters": {"aider": {"module": "m", "class": "C"}}}, "built-in tool"),
        ({"prices": {"m": {"input_per_mtok": -1, "output_per_mtok": 1}}}, "prices.m.input"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_config_errors_name_file_and_json_path(tmp_path: Path, data: Any, expected: str) -> None:
    write_config(tmp_path, data)
    with pytest.raises(UsageError) as info:
        load_router_config(tmp_path)
    assert "router_config.json" in info.value.message
    assert expected in info.value.message
    assert info.value.hint


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("*.md", "docs/a/b.md", True),
        ("docs/**", "docs/a/b.txt", True),
        ("docs/**", "docs", True),
        ("docs/**", "src/docs.md", False),
        ("**/*.py", "top.py", True),
        ("./src/*.py", "src/x.py", True),
        ("*.py", "x.pyc", False),
    ],
)
def test_patterns(pattern: str, path: str, hit: bool) -> None:
    assert pattern_matches(pattern, path) is hit


def test_route_by_task_kind_then_files_then_default() -> None:
    config = RouterConfig.model_validate(GUIDE_ROUTES)
    by_kind = route_step("testing", ["src/x.py"], config, everything)
    assert by_kind.tools[0] == "pytest" and "task_kind 'testing'" in by_kind.reason
    by_file = route_step(None, ["docs/guide/intro.md"], config, everything)
    assert by_file.tools == ["aider", "claude", "codex"]
    assert "'docs/guide/intro.md' matches '*.md'" in by_file.reason
    fallback = route_step("unknown-kind", ["data.csv"], config, everything)
    assert fallback.tools == ["claude", "codex"] and "default_tools" in fallback.reason


def test_fallback_order_skips_unavailable_tools() -> None:
    config = RouterConfig.model_validate(GUIDE_ROUTES)
    decision = route_step("code_edit", ["a.py"], config, lambda t: t in {"aider", "codex"})
    assert decision.tools == ["aider", "codex"]
    assert "cursor" in decision.reason and "claude" in decision.reason
    nothing = route_step("code_edit", ["a.py"], RouterConfig(), everything)
    assert nothing.tools == [] and "tool_profile_id" in nothing.reason


def test_priority_orders_matching_routes() -> None:
    config = RouterConfig.model_validate(
        {"routes": [
            {"file_patterns": ["*.md"], "tools": ["codex"], "priority": "low"},
            {"file_patterns": ["docs/**"], "tools": ["gemini"], "priority": "critical"},
        ]}
    )  # fmt: skip
    assert route_step(None, ["docs/a.md"], config, everything).tools == ["gemini", "codex"]


def test_builtin_adapters_and_router_prices(tmp_path: Path) -> None:
    write_config(tmp_path, {"prices": {"gpt-4o": {"input_per_mtok": 100, "output_per_mtok": 0}}})
    adapter = get_adapter("aider", load_router_config(tmp_path), tmp_path)
    assert isinstance(adapter, AiderAdapter)
    assert adapter.prices.estimate("gpt-4o", 1_000_000, 0).cost_usd == 100
    with pytest.raises(UsageError, match="unknown tool 'aidr'") as info:
        get_adapter("aidr", RouterConfig(), tmp_path)
    assert "did you mean 'aider'" in (info.value.hint or "")


REAL_ADAPTER = """
from uet_doit.tools.adapters.base import Invocation, ToolAdapter, ToolResult

class Echo(ToolAdapter):
    name = "echo"
    executable = None

    def build(self, request):
        return Invocation(argv=["sh", "-c", "echo made > made.txt"], env=request.env,
                          cwd=request.project_root)

    def parse(self, request, proc):
        return ToolResult(success=proc.exit_code == 0, exit_code=proc.exit_code)
"""

GUIDE_ADAPTER = '''
from pathlib import Path
from uet_doit.tools.adapters import ToolAdapter

class DocumentationGeneratorAdapter(ToolAdapter):
    """The guide's shape: only execute(self, context)."""

    def execute(self, context):
        template = Path("docs/adr/template.md").read_text()
        out = Path(context["create_files"][0])
        out.write_text(template.replace("TITLE", context["instruction"]))
        return {"status": "success", "files_created": [str(out)], "cost_usd": 0.25}

class Failing:
    def execute(self, context):
        return {"status": "failed", "error": "template missing"}
'''


def make_project(root: Path) -> RouterConfig:
    (root / "scripts").mkdir()
    (root / "scripts" / "__init__.py").write_text("", encoding="utf-8")
    (root / "scripts" / "echo_adapter.py").write_text(REAL_ADAPTER, encoding="utf-8")
    (root / "scripts" / "uet_custom_adapter.py").write_text(GUIDE_ADAPTER, encoding="utf-8")
    (root / "scripts" / "broken.py").write_text("import not_a_real_module_xyz\n", encoding="utf-8")
    (root / "docs" / "adr").mkdir(parents=True)
    (root / "docs" / "adr" / "template.md").write_text("# ADR: TITLE\n", encoding="utf-8")
    write_config(
        root,
        {"custom_adapters": {
            "echo": {"module": "scripts.echo_adapter", "class": "Echo"},
            "adr_generator": {"module": "scripts.uet_custom_adapter",
                              "class": "DocumentationGeneratorAdapter"},
            "adr_failing": {"module": "scripts.uet_custom_adapter", "class": "Failing"},
            "broken": {"module": "scripts.broken", "class": "X"},
            "no_class": {"module": "scripts.echo_adapter", "class": "Missing"},
            "not_adapter": {"module": "scripts.echo_adapter", "class": "Invocation"},
            "no_module": {"module": "scripts.nowhere", "class": "X"},
        },
         "default_tools": ["broken", "echo"]},
    )  # fmt: skip
    return load_router_config(root)


def request_for(root: Path, tool: str, create: tuple[str, ...] = ()) -> StepRequest:
    return StepRequest(
        step_id="s",
        ws_id="w",
        tool=tool,
        instruction="Use a DB",
        files=(),
        create_files=create,
        project_root=root,
        env=dict(os.environ),
        timeout=120,
        result_file=root / ".uet" / "result.json",
        stdout_path=root / ".uet" / "out.log",
        stderr_path=root / ".uet" / "err.log",
    )


@pytest.mark.usefixtures("clean_modules")
def test_custom_tooladapter_subclass_is_loaded_and_runs(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    adapter = get_adapter("echo", config, tmp_path)
    result = adapter.execute(request_for(tmp_path, "echo"))
    assert result.success and (tmp_path / "made.txt").read_text() == "made\n"


@pytest.mark.usefixtures("clean_modules")
def test_guide_shaped_adapter_is_wrapped_and_runs_in_the_project(tmp_path: Path) -> None:
    config = make_project(tmp_path)
    adapter = get_adapter("adr_generator", config, tmp_path)
    assert isinstance(adapter, LegacyAdapter)
    result = adapter.execute(request_for(tmp_path, "adr_generator", ("docs/adr/0001.md",)))
    assert result.success, result.message
    assert (tmp_path / "docs/adr/0001.md").read_text() == "# ADR: Use a DB\n"
    assert result.files_changed == ("docs/adr/0001.md",) and result.cost_usd == 0.25
    failing = get_adapter("adr_failing", config, tmp_path).execute(
        request_for(tmp_path, "adr_failing")
    )
    assert not failing.success and "template missing" in failing.message


@pytest.mark.usefixtures("clean_modules")
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("broken", "cannot import module 'scripts.broken': ModuleNotFoundError"),
        ("no_module", "cannot import module 'scripts.nowhere'"),
        ("no_class", "module 'scripts.echo_adapter' has no class 'Missing'"),
        ("not_adapter", "scripts.echo_adapter:Invocation is not a tool adapter"),
    ],
)
def test_broken_custom_adapter_is_a_clear_error(tmp_path: Path, name: str, expected: str) -> None:
    config = make_project(tmp_path)
    with pytest.raises(UsageError) as info:
        get_adapter(name, config, tmp_path)
    assert expected in info.value.message and f"custom_adapters.{name}" in info.value.message
    assert info.value.hint
    # the other tools still work, and routing skips the broken one
    assert isinstance(get_adapter("aider", config, tmp_path), AiderAdapter)
    decision = route_step(None, ["x"], config, routing.availability(config, tmp_path))
    assert decision.tools == ["echo"] and "broken" in decision.reason


@pytest.mark.usefixtures("clean_modules")
def test_entry_point_adapters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    ep = EntryPoint("plug", "uet_doit.tools.adapters.shell:ShellAdapter", routing.ENTRY_POINT_GROUP)
    bad = EntryPoint("badplug", "no_such_pkg_xyz:Thing", routing.ENTRY_POINT_GROUP)
    monkeypatch.setattr(routing, "_entry_points", lambda: {"plug": ep, "badplug": bad})
    assert "plug" in known_tool_names(RouterConfig())
    assert get_adapter("plug", RouterConfig(), tmp_path).__class__.__name__ == "ShellAdapter"
    with pytest.raises(UsageError, match="entry point no_such_pkg_xyz:Thing"):
        get_adapter("badplug", RouterConfig(), tmp_path)


def test_uet_route_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, {"routes": [{"task_kind": "docs", "tools": ["codex", "shell"]}]})
    (tmp_path / "notes.md").write_text("x\n", encoding="utf-8")
    bundle = {
        "bundle_id": "demo",
        "workstreams": [
            {"ws_id": "ws-a", "kind": "docs", "steps": [
                {"step_id": "s1", "tool_profile_id": "auto",
                 "context": {"files": ["notes.md"], "instruction": "x"}},
                {"step_id": "s2", "tool_profile_id": "shell", "context": {"command": ["true"]}},
            ]},
        ],
    }  # fmt: skip
    (tmp_path / "bundle.json").write_text(json.dumps(bundle), encoding="utf-8")
    monkeypatch.setenv("PATH", str(tmp_path))  # codex not installed: shell is the fallback
    code = main(["route", "bundle.json"])
    out = capsys.readouterr().out
    assert code == 0
    s1 = next(line for line in out.splitlines() if line.startswith("s1"))
    assert "shell" in s1 and "task_kind 'docs'" in s1 and "codex" in s1
    assert "set by tool_profile_id" in out


def test_guide_shape_without_framework_import_gets_a_hint(tmp_path: Path) -> None:
    (tmp_path / "legacy_mod.py").write_text(
        textwrap.dedent(
            """
            from UNIVERSAL_EXECUTION_TEMPLATES_FRAMEWORK.core.adapters.base import ToolAdapter
            """
        ),
        encoding="utf-8",
    )
    write_config(tmp_path, {"custom_adapters": {"old": {"module": "legacy_mod", "class": "A"}}})
    try:
        with pytest.raises(UsageError) as info:
            get_adapter("old", load_router_config(tmp_path), tmp_path)
    finally:
        sys.modules.pop("legacy_mod", None)
    assert "execute(self, context)" in (info.value.hint or "")


TRAITS_ADAPTER = """
from uet_doit.tools.adapters.base import Invocation, ToolAdapter, ToolResult

class Lint(ToolAdapter):
    name = "lint"
    local = True
    in_place = True
    cached_by_default = False
    reviewer = False

    def build(self, request):
        return Invocation(argv=["true"], env=request.env, cwd=request.project_root)

    def parse(self, request, proc):
        return ToolResult(success=True)

class Plain(Lint):
    local = ToolAdapter.local
    in_place = ToolAdapter.in_place
    cached_by_default = ToolAdapter.cached_by_default
    reviewer = ToolAdapter.reviewer
"""


def test_builtin_traits_are_what_uet_always_assumed() -> None:
    table = {
        name: (t.ai, t.local, t.in_place, t.cached_by_default, t.reviewer)
        for name in sorted(builtin_tool_names())
        for t in [tool_traits(name)]
    }
    assert table == {
        "aider": (True, False, False, True, True),
        "auto": (True, False, False, True, False),
        "claude": (True, False, False, True, True),
        "codex": (True, False, False, True, True),
        "gemini": (True, False, False, True, True),
        "pytest": (False, False, True, False, False),
        "python": (False, True, True, False, False),
        "shell": (False, True, True, False, False),
    }
    assert ai_tools() == ("aider", "claude", "codex", "gemini")  # the `auto` fallback order
    assert tool_traits("aider").own_files == (".aider*",)


@pytest.mark.usefixtures("clean_modules")
def test_a_custom_adapter_declares_its_traits_or_has_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "lint_adapter.py").write_text(TRAITS_ADAPTER, encoding="utf-8")
    (tmp_path / "router_config.json").write_text(
        '{"custom_adapters": {"lint": {"module": "lint_adapter", "class": "Lint"},'
        ' "plain": {"module": "lint_adapter", "class": "Plain"},'
        ' "broken": {"module": "no_such_module_xyz", "class": "X"}}}',
        encoding="utf-8",
    )
    registry = AdapterRegistry(tmp_path)
    lint = registry.traits("lint")
    assert (lint.local, lint.in_place, lint.cached_by_default, lint.reviewer) == (
        True,
        True,
        False,
        False,
    )
    for name in ("plain", "broken"):  # the defaults: edits in a worktree, cached, may review
        got = registry.traits(name)
        assert (got.ai, got.local, got.in_place, got.cached_by_default, got.reviewer) == (
            False,
            False,
            False,
            True,
            True,
        )
    assert tool_traits("lint") is ToolTraits  # by name alone: not loaded, the defaults
    assert registry.traits("shell") is tool_traits("shell")
