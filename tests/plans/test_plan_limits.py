"""`uet convert` refuses plans past its bounds at their line, before parsing them."""

from __future__ import annotations

import pytest

from uet_doit.errors import EXIT_USAGE
from uet_doit.plans.plan_limits import MAX_PLAN_BYTES, MAX_TABLE_CELLS

from support import Project


def wide_table(rows: int, cols: int) -> str:
    header = "| Task | " + " | ".join(f"c{i}" for i in range(cols - 1)) + " |"
    body = [f"| t{r} | " + " | ".join("x" for _ in range(cols - 1)) + " |" for r in range(rows)]
    return "\n".join([header, "|" + "---|" * cols, *body]) + "\n"


PLAN_HEAD = "# Plan\n\n## Week 1: Build\n\n"


def test_a_wide_table_is_refused_at_its_line(project: Project) -> None:
    project.write("plan.md", PLAN_HEAD + wide_table(30, 2_000))
    res = project.uet("convert", "plan.md", "-o", "bundle.json")
    assert res.code == EXIT_USAGE
    assert "plan.md:5: a table of 31 rows x 2,000 columns (62,000 cells)" in res.err
    assert f"up to {MAX_TABLE_CELLS:,} table cells" in res.err
    assert "Traceback" not in res.err
    assert not (project.root / "bundle.json").exists()


@pytest.mark.slow  # parses 100,000 table cells
def test_tables_count_together_and_fenced_ones_not_at_all(project: Project) -> None:
    fenced = "```\n" + wide_table(40, 2_000) + "```\n\n"
    table = wide_table(9, 2_000)  # 20,000 cells each
    project.write("ok.md", PLAN_HEAD + fenced + table + "\n" + table)
    assert project.uet("convert", "ok.md", "-o", "ok.json").code == 0
    project.write("many.md", PLAN_HEAD + table + "\n" + table + "\n" + table)
    res = project.uet("convert", "many.md")
    assert res.code == EXIT_USAGE
    assert "many.md:29: a table of 10 rows x 2,000 columns (20,000 cells, 60,000" in res.err


def test_a_plan_past_the_size_bound_is_refused_unread(project: Project) -> None:
    project.write("big.md", PLAN_HEAD + "- [ ] a task\n" * (MAX_PLAN_BYTES // 12))
    res = project.uet("convert", "big.md")
    assert res.code == EXIT_USAGE
    assert f"big.md: the plan is {(project.root / 'big.md').stat().st_size:,} bytes" in res.err
