from __future__ import annotations

from uet_doit.bundle.graph import build_graph, dependents_of, normalise_path
from uet_doit.bundle.model import Bundle


def chain(n: int) -> Bundle:
    steps = [
        {"step_id": f"s{i}", "command": "true", **({"depends_on": [f"s{i - 1}"]} if i else {})}
        for i in range(n)
    ]
    return Bundle.model_validate(
        {"bundle_id": "c", "workstreams": [{"ws_id": "W", "steps": steps}]}
    )


def test_deep_chain_has_no_cycle_and_orders_without_recursion() -> None:
    graph = build_graph(chain(10_000))
    assert graph.find_cycle() is None
    order = graph.order()
    assert order.index("s0") < order.index("s9999")


def test_cycle_is_shown_as_a_path() -> None:
    b = chain(3)
    b.workstreams[0].steps[0].depends_on.append("s2")
    assert build_graph(b).find_cycle() == ["s0", "s2", "s1", "s0"]


def test_dependents_follow_workstream_edges() -> None:
    b = Bundle.model_validate(
        {
            "bundle_id": "b",
            "workstreams": [
                {"ws_id": "A", "steps": [{"step_id": "a", "command": "true"}]},
                {"ws_id": "B", "depends_on": ["A"], "steps": [{"step_id": "b", "command": "true"}]},
                {"ws_id": "C", "steps": [{"step_id": "c", "command": "true"}]},
            ],
        }
    )
    assert dependents_of(build_graph(b), {"A", "a"}) == {"A", "a", "B", "b"}


def test_paths_have_one_spelling() -> None:
    assert normalise_path("./docs//a.md") == "docs/a.md"
    assert normalise_path("docs\\a.md") == "docs/a.md"
