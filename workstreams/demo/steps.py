"""Python steps of the demo bundle (called by uet's `python` tool with the step context)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def index_outline(context: dict[str, Any]) -> dict[str, Any]:
    """Turn the outline's headings into a JSON index; report a (zero) cost like an AI tool."""
    root = Path(context["project_root"])
    source = root / context["params"]["source"]
    sections = [
        {"level": len(line) - len(line.lstrip("#")), "title": line.lstrip("#").strip()}
        for line in source.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    ]
    target = root / context["create_files"][0]
    target.write_text(json.dumps({"sections": sections}, indent=2) + "\n", encoding="utf-8")
    return {"cost_usd": 0.0, "tokens_in": 0, "tokens_out": 0}


def write_report(index_path: str, report_path: str) -> None:
    sections = json.loads(Path(index_path).read_text(encoding="utf-8"))["sections"]
    lines = [f"{len(sections)} sections"] + [f"- {s['title']}" for s in sections]
    Path(report_path).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_report(sys.argv[1], sys.argv[2])
