"""Which paths a step may change, and which steps `conflicts: serialize` keeps apart."""

from __future__ import annotations

import threading

import pytest

from uet_doit.run.workspaces.scope import Scope, ScopeGate, overlaps

from support import wait_for


@pytest.mark.parametrize(
    ("entries", "path", "allowed"),
    [
        (["docs/a.md"], "docs/a.md", True),
        (["docs/a.md"], "docs/a.md.bak", False),
        (["docs/a.md"], "docs/b.md", False),
        (["docs/"], "docs/deep/b.md", True),
        (["docs"], "docs/b.md", True),
        (["docs"], "docsx/b.md", False),
        (["docs/*.md"], "docs/b.md", True),
        (["docs/*.md"], "docs/deep/b.md", False),
        (["docs/**"], "docs/deep/er/b.md", True),
        (["**/*.py"], "a/b/c.py", True),
        (["**/*.py"], "c.py", True),
        (["src/?.py"], "src/ab.py", False),
        (["./src/x.py"], "src/x.py", True),
        ([], "anything/at/all", True),  # a step naming no path is not limited
    ],
)
def test_scope_allows(entries: list[str], path: str, allowed: bool) -> None:
    assert Scope(entries).allows(path) is allowed


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        (["a.md"], ["a.md"], True),
        (["a.md"], ["b.md"], False),
        (["docs/"], ["docs/x.md"], True),
        (["docs/*.md"], ["docs/deep/**"], True),  # conservative: same literal head
        (["docs/**"], ["src/**"], False),
        (["a.md"], [], True),
    ],
)
def test_overlaps(a: list[str], b: list[str], overlap: bool) -> None:
    assert overlaps(Scope(a), Scope(b)) is overlap
    assert overlaps(Scope(b), Scope(a)) is overlap


def test_gate_holds_a_serialised_step_until_the_overlapping_one_leaves() -> None:
    gate = ScopeGate()
    gate.enter("first", Scope(["a.md"]), False, lambda _: None)
    waited: list[object] = []
    entered = threading.Event()

    def second() -> None:
        gate.enter("second", Scope(["a.md"]), True, waited.append)
        entered.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert wait_for(lambda: list(waited), bool, 30) == ["first"]  # it is held by "first"
    assert not entered.is_set()
    gate.enter("other", Scope(["b.md"]), True, lambda _: None)  # no overlap: not held
    gate.leave("first")
    assert entered.wait(2)
    thread.join()
