"""Helpers of the step cache tests: two clones of one project, a bundle of fake-AI steps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from uet_doit.testing import FakeTools

from support import Project


@dataclass
class Clones:
    """Two checkouts of one project (same bundle and inputs), used one at a time."""

    first: Project
    second: Project
    fakes: FakeTools
    monkeypatch: pytest.MonkeyPatch

    def use(self, project: Project) -> Project:
        self.monkeypatch.chdir(project.root)
        return project

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        """The fakes' real work (their `--version` answers left out)."""
        return self.fakes.calls(tool)

    def version_calls(self) -> list[dict[str, Any]]:
        return self.fakes.versions()

    def forget_calls(self) -> None:
        self.fakes.log.unlink(missing_ok=True)


def ai_bundle(**extra: Any) -> dict[str, Any]:
    """Four fake-AI steps: b after a; c reads what a reads; d reads only other.md."""
    return {
        "bundle_id": "cached",
        **extra,
        "workstreams": [
            {
                "ws_id": "W",
                "steps": [
                    {
                        "step_id": "a",
                        "tool_profile_id": "aider",
                        "files": ["notes.md"],
                        "create_files": ["out/a.md"],
                        "instruction": "Summarise the notes",
                    },
                    {
                        "step_id": "b",
                        "tool_profile_id": "claude",
                        "depends_on": ["a"],
                        "files": ["other.md"],
                        "create_files": ["out/b.md"],
                        "instruction": "Write the plan from the summary",
                    },
                    {
                        "step_id": "c",
                        "tool_profile_id": "gemini",
                        "files": ["notes.md"],
                        "create_files": ["out/c.md"],
                        "instruction": "List the open questions",
                    },
                    {
                        "step_id": "d",
                        "tool_profile_id": "codex",
                        "files": ["other.md"],
                        "create_files": ["out/d.md"],
                        "instruction": "Draft the glossary",
                    },
                ],
            }
        ],
    }


def seed(project: Project, bundle: dict[str, Any]) -> None:
    """The same checked-in files in every clone."""
    project.write("notes.md", "the notes\n")
    project.write("other.md", "other input\n")
    project.bundle(bundle)


def every_file_text(folder: Path) -> str:
    """All bytes under a folder, as text (to look for secrets anywhere in it)."""
    chunks = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            chunks.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(chunks)
