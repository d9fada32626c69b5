"""The documentation holds together: every relative link in README.md, docs/, the changelog and
benchmarks/README.md leads to a file that exists (and to a heading there, when it names one),
and README stays a short entry point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support import REPO

PAGES = sorted(
    [
        REPO / "README.md",
        REPO / "CHANGELOG.md",
        REPO / "benchmarks" / "README.md",
        *(REPO / "docs").glob("*.md"),
    ]
)
README_MAX_LINES = 300

_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def _prose(path: Path) -> list[str]:
    """The page's lines outside fenced code blocks (a `# comment` there is no heading)."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose(path):
        match = _HEADING.match(line)
        if match:
            slug = _slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _broken_links(page: Path) -> list[str]:
    broken = []
    for line in _prose(page):
        for target in _LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            file_part, _, anchor = target.partition("#")
            dest = (page.parent / file_part).resolve() if file_part else page
            if not dest.exists():
                broken.append(f"{target}: no file {dest.relative_to(REPO)}")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO)}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert _broken_links(page) == []


def test_docs_has_the_topic_pages_readme_maps() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    pages = {p.name for p in (REPO / "docs").glob("*.md")}
    assert pages >= {"format.md", "runs.md", "isolation.md", "security.md", "architecture.md"}
    assert all(f"(docs/{name})" in readme for name in pages), "README maps every docs/ page"


def test_readme_stays_short() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, "move reference material into docs/"


def test_readme_keeps_the_setup_and_test_commands() -> None:
    """.ci/run installs and tests the way README says, so the two lines stay verbatim."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "python3 -m pip install -e . && uet run workstreams/demo.yaml" in readme
    assert "python3 -m pip install -e '.[dev]' && python3 -m pytest" in readme
