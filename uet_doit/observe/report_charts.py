"""The two drawings of the run report: the timeline (one lane per worker) and the
dependency graph, as inline SVG with every value escaped."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

from uet_doit.bundle.graph import build_graph
from uet_doit.bundle.model import Bundle
from uet_doit.observe.graph_export import critical_path, graph_edges
from uet_doit.observe.monitor import format_duration
from uet_doit.observe.status import RunStatus, StepStatus
from uet_doit.state.records import AttemptRecord


class Report(Protocol):
    """What the drawings read of a run's report (observe/report.py's `Report` is one)."""

    @property
    def attempts(self) -> Sequence[AttemptRecord]: ...
    @property
    def status(self) -> RunStatus: ...
    @property
    def steps(self) -> Sequence[StepStatus]: ...
    @property
    def bundle(self) -> Bundle | None: ...
    @property
    def now(self) -> float: ...
    def esc(self, value: Any) -> str: ...
    def durations(self) -> dict[str, float]: ...


def timeline_svg(self: Report) -> str:
    """A Gantt chart: attempts in lanes (a worker keeps its lane while it is free)."""
    rows = [a for a in self.attempts if a.started]
    if not rows:
        return '<p class="muted">No attempts recorded: every step was up to date.</p>'
    t0 = min(float(self.status.started), *(a.started for a in rows))
    t1 = max(self.status.ended or 0.0, *((a.ended or self.now) for a in rows))
    span = max(t1 - t0, 0.001)
    lane_end: list[float] = []
    lane_worker: list[str] = []
    placed: list[tuple[int, Any]] = []
    for a in sorted(rows, key=lambda r: (r.started, r.id)):
        start, worker = a.started, a.worker or "?"
        free = [i for i, e in enumerate(lane_end) if e <= start]
        same = [i for i in free if lane_worker[i] == worker]
        lane = (same or free or [len(lane_end)])[0]
        if lane == len(lane_end):
            lane_end.append(0.0)
            lane_worker.append(worker)
        lane_end[lane], lane_worker[lane] = a.ended or self.now, worker
        placed.append((lane, a))
    left, width, row_h = 110, 1000, 24
    height = 30 + row_h * len(lane_end)
    scale = width / span
    out = [f'<div class="scroll"><svg width="{left + width + 20}" height="{height}">']
    for i in range(len(lane_end)):
        y = 24 + i * row_h
        out.append(f'<rect class="lane" x="{left}" y="{y}" width="{width}" height="20"/>')
        out.append(f'<text x="4" y="{y + 14}">lane {i + 1}</text>')
    for k in range(11):
        x = left + width * k / 10
        out.append(f'<line class="tick" x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{height}"/>')
        out.append(
            f'<text x="{x:.1f}" y="10" text-anchor="middle">{_tick(span * k / 10, span)}</text>'
        )
    for lane, a in placed:
        x = left + (a.started - t0) * scale
        w = max(2.0, ((a.ended or self.now) - a.started) * scale)
        y = 24 + lane * row_h
        tip = (
            f"{a.step_id} attempt {a.attempt}: {a.outcome}, "
            f"{secs((a.ended or self.now) - a.started)}, worker {a.worker}"
            + (f", ${a.cost_usd:.4f}" if a.cost_usd else "")
            + (f", {a.failure_class}" if a.failure_class else "")
        )
        label = self.esc(a.step_id) if w > 8 * len(a.step_id) else ""
        out.append(
            f'<g class="bar bar-{self.esc(a.outcome)}"><title>{self.esc(tip)}</title>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="20" rx="3"/>'
            f'<text x="{x + 4:.1f}" y="{y + 14}">{label}</text></g>'
        )
    return "".join(out) + "</svg></div>"


def graph_svg(self: Report) -> str:
    """Nodes layered by dependency depth, left to right; the critical path in red."""
    state = {s.step_id: s.status for s in self.steps}
    if self.bundle is not None:
        graph = build_graph(self.bundle)
        depth: dict[str, int] = {}
        for node in graph.order():
            deps = [depth[d] for d in graph.edges.get(node, []) if d in depth]
            depth[node] = 1 + max(deps, default=-1)
        for node in graph.kinds:
            depth.setdefault(node, 0)
        edges = graph_edges(graph)
        path = critical_path(graph, self.durations())
        kinds = graph.kinds
        note = ""
    else:
        ws_order = list(dict.fromkeys(s.ws_id or "-" for s in self.steps))
        depth = {s.step_id: ws_order.index(s.ws_id or "-") for s in self.steps}
        kinds, edges, path = dict.fromkeys(depth, "step"), [], []
        note = '<p class="muted">The bundle file could not be read: steps without edges.</p>'
    crit_pairs = set(itertools.pairwise(path))
    order = {n: i for i, n in enumerate(kinds)}
    columns: dict[int, list[str]] = defaultdict(list)
    for node in sorted(depth, key=lambda n: (depth[n], order.get(n, 0))):
        columns[depth[node]].append(node)
    col_w, node_w, node_h, gap = 210, 180, 26, 34
    pos: dict[str, tuple[float, float]] = {
        n: (20 + c * col_w, 20 + r * gap)
        for c, nodes in columns.items()
        for r, n in enumerate(nodes)
    }
    width = 40 + col_w * (max(columns, default=0) + 1)
    height = 40 + gap * max((len(v) for v in columns.values()), default=1)
    out = [f'{note}<div class="scroll"><svg width="{width}" height="{height}">']
    for dep, user, implied in edges:
        (x1, y1), (x2, y2) = pos[dep], pos[user]
        x1, y1, y2 = x1 + node_w, y1 + node_h / 2, y2 + node_h / 2
        mid = (x1 + x2) / 2
        cls = (
            "edge"
            + (" implied" if implied else "")
            + (" crit" if (dep, user) in crit_pairs else "")
        )
        out.append(
            f'<path class="{cls}" data-from="{self.esc(dep)}" data-to="{self.esc(user)}" '
            f'd="M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"/>'
        )
    on_path = set(path)
    for node, (x, y) in pos.items():
        ws = kinds.get(node) == "workstream"
        cls = "node" + (" ws" if ws else "") + (" crit" if node in on_path and not ws else "")
        st = "pending" if ws else state.get(node, "pending")
        label = node if len(node) <= 26 else node[:25] + "…"
        out.append(
            f'<g class="{cls}" data-id="{self.esc(node)}"><title>{self.esc(node)}: '
            f"{self.esc('workstream' if ws else st)}</title>"
            f'<rect class="n-{self.esc(st)}" x="{x}" y="{y}" '
            f'width="{node_w}" height="{node_h}"/>'
            f'<text x="{x + 8}" y="{y + 17}">{self.esc(label)}</text></g>'
        )
    legend = "critical path (red) from step durations" if path else "no durations known yet"
    return "".join(out) + f'</svg></div><p class="muted">Dashed: file edges; {legend}.</p>'


def _tick(seconds: float, span: float) -> str:
    return f"{seconds:.2f}s" if span < 10 else secs(seconds)


def secs(seconds: float) -> str:
    return format_duration(max(0.0, seconds))
