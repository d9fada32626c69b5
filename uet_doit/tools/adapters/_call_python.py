"""Child side of the python tool: import the callable, call it, report through the result file."""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from typing import Any


def main() -> int:
    payload = json.load(sys.stdin)
    module_name, _, func_name = payload["callable"].partition(":")
    context = payload["context"]
    obj: Any
    try:
        obj = importlib.import_module(module_name)
        for part in func_name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        print(f"cannot load {payload['callable']}: {exc} (file not found)", file=sys.stderr)
        return 2
    try:
        result = obj(context)
    except Exception:
        traceback.print_exc()
        return 1
    if result is False:
        print(f"{payload['callable']} returned False", file=sys.stderr)
        return 1
    if isinstance(result, dict):
        with open(context["result_file"], "w", encoding="utf-8") as fh:
            json.dump(result, fh, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
