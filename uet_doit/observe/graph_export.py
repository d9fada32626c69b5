"""The step graph for people: DOT or Mermaid text (`uet graph`) and its critical path."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping

from uet_doit.bundle.graph import StepGraph, build_graph
from uet_doit.bundle.model import Bundle


def critical_path(graph: StepGraph, durations: Mapping[str, float]) -> list[str]:
    """The chain (dependencies first) with the longest summed step duration; [] if unknown."""
    known = [d for n, d in durations.items() if graph.kinds.get(n) == "step"]
    if not known:
        return []
    default = sum(known) / len(known)
    best: dict[str, float] = {}
    prev: dict[str, str | None] = {}
    for name in graph.order():
        weight = durations.get(name, default) if graph.kinds[name] == "step" else 0.0
        deps = [d for d in graph.edges.get(name, []) if d in best]
        top = max(deps, key=best.__getitem__, default=None)
        best[name] = weight + (best[top] if top else 0.0)
        prev[name] = top
    if not best:
        return []
    node: str | None = max(best, key=best.__getitem__)
    path: list[str] = []
    while node is not None:
        path.append(node)
        node = prev[node]
    return path[::-1]


def graph_edges(graph: StepGraph) -> list[tuple[str, str, bool]]:
    """(dependency, user, implied-by-a-file) once per pair, in a stable order."""
    out: dict[tuple[str, str], bool] = {}
    for user, deps in graph.edges.items():
        for dep in deps:
            if dep in graph.kinds and user in graph.kinds:
                key = (dep, user)
                implied = dep in graph.implied.get(user, ())
                out[key] = out.get(key, True) and implied
    return [(d, u, i) for (d, u), i in out.items()]


# -- report data ------------------------------------------------------------------------------
def graph_text(bundle: Bundle, fmt: str, durations: Mapping[str, float] | None = None) -> str:
    """DOT or Mermaid: workstreams as clusters, explicit and file edges, the critical path."""
    graph = build_graph(bundle)
    path = critical_path(graph, durations or {})
    crit_nodes, crit_pairs = set(path), set(itertools.pairwise(path))
    ws_of = {s.step_id: ws.ws_id for ws, s in bundle.steps()}
    edges: list[tuple[str, str, str, bool]] = []  # (from, to, style, critical)
    for ws in bundle.workstreams:
        for dep in ws.depends_on:
            hot = any((dep, s.step_id) in crit_pairs for s in ws.steps)
            edges.append((dep, ws.ws_id, "ws", hot))
    ws_deps = {s.step_id: set(ws.depends_on) for ws, s in bundle.steps()}
    for dep, user, implied in graph_edges(graph):
        if graph.kinds.get(user) != "step" or dep in ws_deps[user]:
            continue  # workstream -> its steps, or drawn once as cluster -> cluster
        edges.append((dep, user, "file" if implied else "dep", (dep, user) in crit_pairs))
    if fmt == "mermaid":
        return _mermaid(bundle, edges, crit_nodes, ws_of)
    return _dot(bundle, edges, crit_nodes)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot(bundle: Bundle, edges: list[tuple[str, str, str, bool]], crit: set[str]) -> str:
    lines = [
        f"digraph {_q(bundle.bundle_id)} {{",
        "  rankdir=LR; compound=true;",
        "  node [shape=box, style=rounded, fontsize=10];",
    ]
    anchor = {}
    for ws in bundle.workstreams:
        lines.append(f"  subgraph {_q('cluster_' + ws.ws_id)} {{")
        lines.append(
            f"    label={_q(ws.ws_id + (': ' + ws.name if ws.name else ''))}; style=dashed;"
        )
        if not ws.steps:
            lines.append(f'    {_q(ws.ws_id)} [shape=plaintext, label="(no steps)"];')
        for s in ws.steps:
            extra = ", color=red, penwidth=2" if s.step_id in crit else ""
            lines.append(f"    {_q(s.step_id)} [label={_q(s.step_id)}{extra}];")
        anchor[ws.ws_id] = ws.steps[-1].step_id if ws.steps else ws.ws_id
        lines.append("  }")
    for dep, user, style, hot in edges:
        attrs = []
        tail = anchor.get(dep, dep)
        if dep in anchor:
            attrs.append(f"ltail={_q('cluster_' + dep)}")
        head = user
        if style == "ws":
            ws = next(w for w in bundle.workstreams if w.ws_id == user)
            head = ws.steps[0].step_id if ws.steps else user
            attrs.append(f"lhead={_q('cluster_' + user)}")
        if style == "file":
            attrs += ["style=dashed", 'label="file"']
        if hot:
            attrs += ["color=red", "penwidth=2"]
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"  {_q(tail)} -> {_q(head)}{suffix};")
    return "\n".join([*lines, "}"]) + "\n"


def _mermaid(
    bundle: Bundle, edges: list[tuple[str, str, str, bool]], crit: set[str], ws_of: dict[str, str]
) -> str:
    ids: dict[str, str] = {}

    def mid(name: str, prefix: str) -> str:
        key = prefix + name
        if key not in ids:
            ids[key] = f"{prefix}{len(ids)}_" + re.sub(r"\W", "_", name)
        return ids[key]

    lines = ["flowchart LR"]
    for ws in bundle.workstreams:
        title = (ws.ws_id + (": " + ws.name if ws.name else "")).replace('"', "#quot;")
        lines.append(f'  subgraph {mid(ws.ws_id, "ws")}["{title}"]')
        lines += [f'    {mid(s.step_id, "s")}["{s.step_id}"]' for s in ws.steps]
        lines.append("  end")
    hot_links = []
    for n, (dep, user, style, hot) in enumerate(edges):
        a = mid(dep, "ws") if dep not in ws_of else mid(dep, "s")
        b = mid(user, "ws") if style == "ws" else mid(user, "s")
        lines.append(f"  {a} -.->|file| {b}" if style == "file" else f"  {a} --> {b}")
        if hot:
            hot_links.append(str(n))
    if crit:
        lines.append("  classDef crit stroke:#d50000,stroke-width:3px;")
        names = [mid(s, "s") for s in ws_of if s in crit]
        lines.append(f"  class {','.join(names)} crit;")
    if hot_links:
        lines.append(f"  linkStyle {','.join(hot_links)} stroke:#d50000,stroke-width:3px;")
    return "\n".join(lines) + "\n"
