"""`uet report`: one self-contained HTML file per run. The report loads nothing from the
network (inline CSS, JS and SVG under a CSP that forbids fetching), escapes every value and
redacts secrets from the environment."""

from __future__ import annotations

import html
import itertools
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from uet_doit.bundle.graph import build_graph
from uet_doit.bundle.model import Bundle
from uet_doit.errors import UsageError
from uet_doit.observe.graph_export import critical_path, graph_edges
from uet_doit.observe.status import RunStatus, StepStatus, run_status
from uet_doit.state.records import AttemptOutcome, RunRecord, StepState
from uet_doit.state.store import RunStore

_TAIL_LINES, _TAIL_CHARS = 40, 4000


def redactor() -> Callable[[str], str]:
    """Secrets of this environment, as every other output of uet redacts them."""
    from uet_doit.tools.redact import Redactor

    return Redactor.from_env(os.environ).redact


class Report:
    """Everything one run recorded, rendered to HTML; `esc` redacts before escaping."""

    def __init__(self, store: RunStore, run_id: str | None, bundle: Bundle | None = None) -> None:
        from uet_doit.observe.monitor import load_run_bundle

        self.status: RunStatus = run_status(store, run_id)
        self.run_id = self.status.run_id
        run = store.run(self.run_id)
        assert run is not None  # run_status found it
        self.run: RunRecord = run
        self.attempts = store.attempts(self.run_id)
        self._store = store
        self.events = store.events(self.run_id)
        self.bundle = bundle or load_run_bundle(store, self.run_id)
        self.past = store.durations(self.status.bundle_id)
        self.redact = redactor()
        self.now = time.time()
        self.steps = self._all_steps()

    def esc(self, value: Any) -> str:
        return html.escape(self.redact("" if value is None else str(value)), quote=True)

    def _all_steps(self) -> list[StepStatus]:
        """Every step: the run's rows, plus bundle steps the run never planned."""
        steps = list(self.status.steps)
        known = {s.step_id for s in steps}
        if self.bundle is not None:
            for ws, step in self.bundle.steps():
                if step.step_id not in known:
                    steps.append(StepStatus(step.step_id, ws.ws_id, None, StepState.PENDING))
        return steps

    def durations(self) -> dict[str, float]:
        """This run's step durations, else the project's past medians."""
        own = {
            s.step_id: s.ended - s.started
            for s in self.steps
            if s.status == StepState.SUCCEEDED and s.started and s.ended
        }
        return {**self.past, **own}

    def render(self) -> str:
        template = (
            resources.files("uet_doit.observe").joinpath("report_template.html").read_text("utf-8")
        )
        sections = [
            ("timeline", "Timeline", self.timeline()),
            ("graph", "Dependency graph", self.graph_svg()),
            ("costs", "Costs and budgets", self.costs()),
            ("forecast", "Forecast against actual", self.forecast()),
            ("steps", "Steps", self.steps_table()),
            ("failures", "Retries and failures", self.failures()),
            ("gates", "Validation gates", self.gates()),
            ("criteria", "Completion criteria", self.criteria()),
            ("events", "Events", self.event_log()),
        ]
        nav = "".join(f'<a href="#{key}">{title}</a>' for key, title, _ in sections)
        body = self.header() + f"<nav>{nav}</nav><main>"
        for key, title, content in sections:
            body += f'<section id="{key}"><h2>{title}</h2>{content}</section>'
        page = template.replace("{{title}}", self.esc(f"uet report {self.run_id}"))
        return page.replace("{{body}}", body + "</main>")

    # -- sections -----------------------------------------------------------------------
    def header(self) -> str:
        st, b = self.status, self.bundle
        budget = f" / ${b.max_cost_usd:.2f}" if b and b.max_cost_usd else ""
        end = st.ended or self.now
        fields = [
            ("Run", st.run_id),
            ("Bundle", f"{st.bundle_id}" + (f" ({b.bundle_name})" if b and b.bundle_name else "")),
            ("Status", st.status + (f" - {st.reason}" if st.reason else "")),
            ("Started", _when(st.started)),
            ("Ended", _when(st.ended) if st.ended else "-"),
            ("Duration", _secs(end - st.started)),
            ("Total cost", f"${st.total_cost_usd:.4f}{budget}"),
            ("Steps", f"{st.completed_count}/{len(self.steps)} finished"),
            ("Parallel jobs", self.run.jobs),
            ("Bundle file", self.run.bundle_file or "-"),
        ]
        items = "".join(f"<div><dt>{k}</dt><dd>{self.esc(v)}</dd></div>" for k, v in fields)
        return f"<header><h1>{self.esc(st.run_id)}</h1><dl>{items}</dl></header>"

    def timeline(self) -> str:
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
                f"{_secs((a.ended or self.now) - a.started)}, worker {a.worker}"
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

    def graph_svg(self) -> str:
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

    def costs(self) -> str:
        b = self.bundle
        per_ws: dict[str, float] = defaultdict(float)
        per_tool: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
        for a in self.attempts:
            per_ws[a.ws_id or "-"] += a.cost_usd or 0.0
            for i, v in enumerate((a.cost_usd, a.tokens_in, a.tokens_out, 1)):
                per_tool[a.tool or "-"][i] += v or 0.0
        budgets = {ws.ws_id: ws.max_cost_usd for ws in b.workstreams} if b else {}
        total = sum(per_ws.values())
        scopes = [(f"bundle {self.status.bundle_id}", total, b.max_cost_usd if b else None)]
        ws_ids = dict.fromkeys([*budgets, *(s.ws_id or "-" for s in self.steps)])
        scopes += [(ws, per_ws.get(ws, 0.0), budgets.get(ws)) for ws in ws_ids]
        rows = [
            [
                self.esc(name),
                f"${cost:.4f}",
                f"${budget:.2f}" if budget else "-",
                _meter(cost, budget),
            ]
            for name, cost, budget in scopes
        ]
        tools = [
            [self.esc(tool), f"{n:.0f}", f"${cost:.4f}", f"{tin:.0f}", f"{tout:.0f}"]
            for tool, (cost, tin, tout, n) in sorted(per_tool.items())
        ]
        return (
            _table("Scope|#Cost|#Budget|Used", rows)
            + "<h2>Per tool</h2>"
            + _table("Tool|#Attempts|#Cost|#Tokens in|#Tokens out", tools)
        )

    def forecast(self) -> str:
        """Each step that ran: what the forecast said before the run, and what it cost."""
        from uet_doit.observe.dry_run import forecast_vs_actual, span

        ran = {s.step_id: (s.cost_usd or 0.0, s.attempts) for s in self.steps if s.attempts}
        if self.bundle is None or not ran:
            return '<p class="muted">No forecast: the bundle file is gone or no step ran.</p>'
        rows = forecast_vs_actual(self.bundle, self._store, ran, self.status.started)
        cells = [
            [
                self.esc(r["ws_id"]),
                f"<code>{self.esc(r['step_id'])}</code>" if r["step_id"] else "<b>total</b>",
                self.esc(r["tool"]),
                self.esc(span(r["low_usd"], r["high_usd"])),
                f"${r['actual_usd']:.4f}",
                self.esc(r["attempts"]),
                self.esc(r["verdict"]),
                self.esc(r["basis"]),
            ]
            for r in rows
        ]
        note = (
            '<p class="muted">The forecast as it stood when the run started: calibrated from '
            "the attempts recorded before it (defaults when there were none), input files "
            "as they are now.</p>"
        )
        head = "Workstream|Step|Tool and model|#Forecast|#Actual|#Attempts|Actual is|Basis"
        return note + _table(head, cells)

    def steps_table(self) -> str:
        rows, ids = [], []
        for s in self.steps:
            ids.append(f"step-{self.esc(s.step_id)}")
            rows.append(
                [
                    self.esc(s.ws_id),
                    f"<code>{self.esc(s.step_id)}</code>",
                    self.esc(s.tool or "-"),
                    _badge(self.esc(s.status)),
                    str(s.attempts),
                    _secs(s.ended - s.started) if s.started and s.ended else "-",
                    f"${s.cost_usd:.4f}",
                    self.esc(s.last_error or s.failure_class or ""),
                ]
            )
        return _table("Workstream|Step|Tool|Status|#Attempts|#Duration|#Cost|Message", rows, ids)

    def failures(self) -> str:
        bad = [a for a in self.attempts if a.outcome != AttemptOutcome.SUCCEEDED]
        if not bad:
            return '<p class="muted">No retries or failures.</p>'
        out = []
        for a in bad:
            logs = [("stderr", _tail(a.stderr_path)), ("stdout", _tail(a.stdout_path))]
            out.append(
                f"<div><p><code>{self.esc(a.step_id)}</code> attempt {a.attempt} "
                f"{_badge(self.esc(a.outcome))} {self.esc(a.failure_class or '')} "
                f"exit={self.esc(a.exit_code)}: {self.esc(a.message or '')}</p>"
                + "".join(
                    f"<details><summary>{name} (last lines)</summary>"
                    f"<pre>{self.esc(text)}</pre></details>"
                    for name, text in logs
                    if text
                )
                + "</div>"
            )
        return "".join(out)

    def _events_of(self, *kinds: str) -> list[tuple[Any, dict[str, Any]]]:
        rows = []
        for e in self.events:
            if e.kind in kinds:
                rows.append((e, dict(e.data)))
        return rows

    def gates(self) -> str:
        rows = [
            [
                self.esc(d.get("ws_id")),
                self.esc(d.get("gate_type")),
                _badge(self.esc(e.kind.value.removeprefix("gate_"))),
                f"<code>{self.esc(d.get('command'))}</code>",
                self.esc(d.get("message")),
            ]
            for e, d in self._events_of("gate_passed", "gate_failed", "gate_skipped")
        ]
        if not rows:
            return '<p class="muted">No gates ran in this run.</p>'
        return _table("Workstream|Gate|Result|Command|Message", rows)

    def criteria(self) -> str:
        latest = {
            (d.get("scope"), d.get("description")): d for _, d in self._events_of("criterion")
        }
        if not latest:
            return '<p class="muted">No completion criteria were evaluated.</p>'
        rows = [
            [self.esc(scope), self.esc(text), _badge(self.esc(d.get("state")))]
            for (scope, text), d in latest.items()
        ]
        return _table("Scope|Criterion|State", rows)

    def event_log(self) -> str:
        skip = {"gate_passed", "gate_failed", "gate_skipped", "criterion", "probe"}
        rows = [
            [_when(e.ts), self.esc(e.kind), self.esc(e.step_id or ""), self.esc(json.dumps(e.data))]
            for e in self.events
            if e.kind not in skip
        ][-300:]
        return _table("Time|Event|Step|Data", rows) if rows else '<p class="muted">No events.</p>'


def _table(head: str, rows: list[list[str]], ids: list[str] | None = None) -> str:
    """Cells are HTML already escaped; a `#` before a heading right-aligns that column."""
    cols = head.split("|")
    num = [c.startswith("#") for c in cols]
    out = ["<table><tr>"]
    out += [
        f"<th{' class=num' if n else ''}>{c.lstrip('#')}</th>"
        for c, n in zip(cols, num, strict=True)
    ]
    out.append("</tr>")
    for i, row in enumerate(rows):
        out.append(f'<tr id="{ids[i]}">' if ids else "<tr>")
        out += [f"<td{' class=num' if n else ''}>{v}</td>" for v, n in zip(row, num, strict=True)]
        out.append("</tr>")
    return "".join(out) + "</table>"


def _meter(cost: float, budget: float | None) -> str:
    if not budget:
        return '<span class="muted">no budget</span>'
    pct = 100.0 * cost / budget
    over = " over" if pct > 100 else ""
    bar = f'<span class="{over}" style="width:{min(pct, 100):.0f}%"></span>'
    return f'<div class="meter">{bar}</div>{pct:.0f}%'


def _badge(escaped: str) -> str:
    return f'<span class="badge s-{escaped}">{escaped.replace("_", " ")}</span>'


def _tick(seconds: float, span: float) -> str:
    return f"{seconds:.2f}s" if span < 10 else _secs(seconds)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _secs(seconds: float) -> str:
    from uet_doit.observe.monitor import format_duration

    return format_duration(max(0.0, seconds))


def _tail(path: str | None) -> str:
    if not path:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - _TAIL_CHARS))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-_TAIL_LINES:])


def write_report(root: Path, run_id: str | None, output: Path | None = None) -> Path:
    store = RunStore(root)
    if not store.path.exists():
        raise UsageError(f"no runs recorded in {store.path}", "run `uet run FILE` first")
    report = Report(store, run_id)
    target = output or root / f"report-{report.run_id}.html"
    page = report.render()
    target.write_text(report.redact(page), encoding="utf-8")
    return target
