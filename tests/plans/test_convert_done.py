"""A generic markdown plan's ticked items (`- [x]`) are kept as steps with `skip: done`, not
made into steps to run again."""

from __future__ import annotations

from uet_doit.plans import convert

PLAN = """# Plan

## Phase 1: Parser

### Tasks
- [x] Write the tokenizer in `src/lexer.py`
- [ ] Write the parser in `src/parser.py`

## Phase 2: CLI
- [ ] Command line in `src/cli.py`
- [x] Usage notes in `docs/cli.md`
"""


def test_ticked_items_are_kept_and_skipped() -> None:
    bundle, _ = convert.convert_markdown(PLAN, source="plan.md")
    steps = {s["name"]: s for ws in bundle["workstreams"] for s in ws["steps"]}
    skipped = {name for name, s in steps.items() if s.get("skip") == "done"}
    assert skipped == {"Write the tokenizer in src/lexer.py", "Usage notes in docs/cli.md"}
    assert "skip" not in steps["Write the parser in src/parser.py"]
