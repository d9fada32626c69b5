"""Custom adapters named in router_config.json (`{module, class}`) or by entry point.

Two shapes are accepted: a real `ToolAdapter` subclass (build + parse), used as is, and the
guide's simpler shape, a class with only `execute(self, context)` returning a dict such as
`{"status": "success", "files_created": [...]}`. The second runs in a child Python process
(run as `python -m uet_doit.tools.adapters.custom`) so its crashes, prints, hangs and relative
paths behave like any other tool's: the project root is its working directory and the step
timeout can kill it. Every loading problem becomes a UsageError naming module and class.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from uet_doit.errors import UsageError
from uet_doit.tools.adapters.agent import check_outputs, scrub_secrets, tail
from uet_doit.tools.adapters.base import (
    Invocation,
    StepRequest,
    ToolAdapter,
    ToolResult,
    failed_process,
)
from uet_doit.tools.adapters.python_tool import python_child_env
from uet_doit.tools.failures import FailureClass, classify
from uet_doit.tools.process import ProcessResult

_SUCCESS = frozenset({"success", "succeeded", "ok", "done", "completed", "complete", "true"})
_LEGACY_HINT = (
    "subclass uet_doit.ToolAdapter (with build and parse), or write a plain class "
    "with a method execute(self, context) that returns a dict like "
    '{"status": "success", "files_created": [...]}'
)


def import_adapter(
    name: str, module_name: str, class_name: str, project_root: Path, origin: str
) -> ToolAdapter:
    """Import `module_name` (the project root first on sys.path) and make its class an adapter."""
    root = str(project_root.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    where = f"custom adapter {name!r} ({origin})"
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        hint = (
            f"make sure {module_name.replace('.', '/')}.py exists under {root} and imports "
            "cleanly (`python -c 'import " + module_name + "'` from the project root)"
        )
        if "UNIVERSAL_EXECUTION_TEMPLATES_FRAMEWORK" in str(exc):
            hint = f"the UET framework is not needed: {_LEGACY_HINT}"
        msg = f"{where}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        raise UsageError(msg, hint) from None
    obj: Any = module
    for part in class_name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            classes = sorted(n for n, v in vars(module).items() if inspect.isclass(v))
            msg = f"{where}: module {module_name!r} has no class {class_name!r}"
            raise UsageError(msg, f"classes found there: {', '.join(classes) or 'none'}")
    return adapter_from(obj, name, f"{module_name}:{class_name}", where)


def adapter_from(obj: Any, name: str, target: str, where: str) -> ToolAdapter:
    """An adapter instance from what a module or entry point provides."""
    if isinstance(obj, ToolAdapter):
        return obj
    if not inspect.isclass(obj):
        msg = f"{where}: {target} is a {type(obj).__name__}, not a class"
        raise UsageError(msg, _LEGACY_HINT)
    if issubclass(obj, ToolAdapter) and not inspect.isabstract(obj):
        try:
            instance: ToolAdapter = obj()
        except Exception as exc:
            msg = f"{where}: {target}() failed: {type(exc).__name__}: {exc}"
            raise UsageError(msg, "an adapter class must be creatable without arguments") from None
        return instance
    overridden = getattr(obj, "execute", None) is not getattr(ToolAdapter, "execute", None)
    if callable(getattr(obj, "execute", None)) and overridden:
        return LegacyAdapter(name, target)
    msg = f"{where}: {target} is not a tool adapter"
    raise UsageError(msg, _LEGACY_HINT)


class LegacyAdapter(ToolAdapter):
    """Runs a class with `execute(self, context) -> dict` in a child Python process."""

    name = "custom"

    def __init__(self, tool_name: str, target: str) -> None:
        self.tool_name = tool_name
        self.target = target  # "module:Class"

    def execute(self, request: StepRequest) -> ToolResult:
        return scrub_secrets(request, super().execute(request))

    def build(self, request: StepRequest) -> Invocation:
        payload = {
            "target": self.target,
            "context": {
                "step_id": request.step_id,
                "ws_id": request.ws_id,
                "tool": request.tool,
                "instruction": request.instruction,
                "files": list(request.files),
                "create_files": list(request.create_files),
                "params": dict(request.context.get("params") or {}),
                "options": dict(request.options),
                "model": request.model,
                "project_root": str(request.project_root),
                "result_file": str(request.result_file),
                "attempt": request.attempt,
            },
        }
        env = python_child_env(request)
        return Invocation(
            argv=[sys.executable, "-m", "uet_doit.tools.adapters.custom"],
            env=env,
            cwd=request.project_root,
            stdin_data=json.dumps(payload, default=str).encode(),
        )

    def parse(self, request: StepRequest, proc: ProcessResult) -> ToolResult:
        if proc.timed_out or proc.exit_code != 0:
            if proc.exit_code == 2:
                return ToolResult(
                    success=False,
                    exit_code=2,
                    message=f"{self.tool_name}: {proc.stderr.strip()[-500:]}",
                    failure_class=FailureClass.PERMANENT,
                    output_tail=tail(proc),
                )
            return failed_process(proc)
        data = _read_json(request.result_file)
        status = str(data.get("status", "success")).lower()
        result = ToolResult(success=status in _SUCCESS, exit_code=0, output_tail=tail(proc))
        detail = str(data.get("message") or data.get("error") or "")
        if result.success:
            result.message = f"{self.tool_name}: {detail or status}"
        else:
            result.message = f"{self.tool_name} reported status {status!r}: {detail}".rstrip(": ")
            result.failure_class = classify(None, detail)
        files = data.get("files_created") or data.get("files_changed") or []
        result.files_changed = tuple(str(f) for f in files) if isinstance(files, list) else ()
        _copy_usage(data, result)
        return check_outputs(request, result, self.tool_name)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _copy_usage(data: dict[str, Any], result: ToolResult) -> None:
    cost = data.get("cost_usd")
    if isinstance(cost, int | float):
        result.cost_usd, result.cost_source = float(cost), "result_file"
    for key in ("tokens_in", "tokens_out"):
        if isinstance(data.get(key), int):
            setattr(result, key, data[key])
    if isinstance(data.get("model"), str):
        result.model = data["model"]


def _instantiate(cls: type[Any]) -> Any:
    """The class, made concrete if it is an abstract ToolAdapter that only defines execute."""
    if inspect.isabstract(cls):
        stubs = {m: lambda *_a, **_k: None for m in getattr(cls, "__abstractmethods__", ())}
        cls = type(cls.__name__, (cls,), stubs)
    return cls()


def child_main() -> int:
    """Child side: import the class, call execute(context), write its dict to result_file."""
    payload = json.load(sys.stdin)
    module_name, _, class_name = payload["target"].partition(":")
    context = payload["context"]
    try:
        obj: Any = importlib.import_module(module_name)
        for part in class_name.split("."):
            obj = getattr(obj, part)
        instance = _instantiate(obj)
    except Exception as exc:
        print(f"cannot load {payload['target']}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        result = instance.execute(context)
    except Exception:
        traceback.print_exc()
        return 1
    if result is False:
        print(f"{payload['target']}.execute returned False", file=sys.stderr)
        return 1
    data = result if isinstance(result, dict) else {"status": "success"}
    result_file = Path(context["result_file"])
    result_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.write_text(json.dumps(data, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
