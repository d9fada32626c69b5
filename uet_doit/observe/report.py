"""`uet report`: one self-contained HTML file per run. The report loads nothing from the
network (inline CSS, JS and SVG under a CSP that forbids fetching), escapes every value and
redacts secrets from the environment."""

from __future__ import annotations

import html
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from uet_doit.bundle.model import Bundle
from uet_doit.errors import UsageError
from uet_doit.observe.dry_run import forecast_vs_actual, span
from uet_doit.observe.monitor import load_run_bundle
from uet_doit.observe.report_charts import graph_svg, secs, timeline_svg
from uet_doit.observe.status import RunStatus, StepStatus, run_status
from uet_doit.state.records import AttemptOutcome, RunRecord, StepState
from uet_doit.state.store import RunStore
from uet_doit.tools.redact import Redactor

_TAIL_LINES, _TAIL_CHARS = 40, 4000


def redactor() -> Callable[[str], str]:
    """Secrets of this environment, as every other output of uet redacts them."""
    return Redactor.from_env(os.environ).redact


class Report:
    """Everything one run recorded, rendered to HTML; `esc` redacts before escaping."""

    def __init__(self, store: RunStore, run_id: str | None, bundle: Bundle | None = None) -> None:
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
            ("Duration", secs(end - st.started)),
            ("Total cost", f"{st.cost_text}{budget}"),
            ("Steps", f"{st.completed_count}/{len(self.steps)} finished"),
            ("Parallel jobs", self.run.jobs),
            ("Bundle file", self.run.bundle_file or "-"),
        ]
        items = "".join(f"<div><dt>{k}</dt><dd>{self.esc(v)}</dd></div>" for k, v in fields)
        return f"<header><h1>{self.esc(st.run_id)}</h1><dl>{items}</dl></header>"

    def timeline(self) -> str:
        return timeline_svg(self)

    def graph_svg(self) -> str:
        return graph_svg(self)

    def costs(self) -> str:
        b = self.bundle
        per_ws: dict[str, float] = defaultdict(float)
        per_tool: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
        unknown: dict[str, int] = defaultdict(int)
        for a in self.attempts:
            per_ws[a.ws_id or "-"] += a.cost_usd or 0.0
            if a.cost_unknown:
                unknown[a.ws_id or "-"] += 1
                unknown[f"tool {a.tool or '-'}"] += 1
            for i, v in enumerate((a.cost_usd, a.tokens_in, a.tokens_out, 1)):
                per_tool[a.tool or "-"][i] += v or 0.0
        budgets = {ws.ws_id: ws.max_cost_usd for ws in b.workstreams} if b else {}
        total = sum(per_ws.values())
        scopes = [
            (
                f"bundle {self.status.bundle_id}",
                total,
                b.max_cost_usd if b else None,
                sum(n for k, n in unknown.items() if not k.startswith("tool ")),
            )
        ]
        ws_ids = dict.fromkeys([*budgets, *(s.ws_id or "-" for s in self.steps)])
        scopes += [(ws, per_ws.get(ws, 0.0), budgets.get(ws), unknown.get(ws, 0)) for ws in ws_ids]
        rows = [
            [
                self.esc(name),
                self.esc(_cost_cell(cost, n_unknown)),
                f"${budget:.2f}" if budget else "-",
                _meter(cost, budget),
            ]
            for name, cost, budget, n_unknown in scopes
        ]
        tools = [
            [
                self.esc(tool),
                f"{n:.0f}",
                self.esc(_cost_cell(cost, unknown.get(f"tool {tool}", 0))),
                f"{tin:.0f}",
                f"{tout:.0f}",
            ]
            for tool, (cost, tin, tout, n) in sorted(per_tool.items())
        ]
        return (
            _table("Scope|#Cost|#Budget|Used", rows)
            + "<h2>Per tool</h2>"
            + _table("Tool|#Attempts|#Cost|#Tokens in|#Tokens out", tools)
        )

    def forecast(self) -> str:
        """Each step that ran: what the forecast said before the run, and what it cost."""
        ran = {s.step_id: (s.cost_usd, s.attempts) for s in self.steps if s.attempts}
        if self.bundle is None or not ran:
            return '<p class="muted">No forecast: the bundle file is gone or no step ran.</p>'
        rows = forecast_vs_actual(self.bundle, self._store, ran, self.status.started)
        cells = [
            [
                self.esc(r["ws_id"]),
                f"<code>{self.esc(r['step_id'])}</code>" if r["step_id"] else "<b>total</b>",
                self.esc(r["tool"]),
                self.esc(span(r["low_usd"], r["high_usd"])),
                f"${r['actual_usd']:.4f}" if r["actual_usd"] is not None else "unknown",
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
                    self.esc(s.worker or "-"),
                    _badge(self.esc(s.status)),
                    str(s.attempts),
                    secs(s.ended - s.started) if s.started and s.ended else "-",
                    f"${s.cost_usd:.4f}" if s.cost_usd is not None else "unknown",
                    self.esc(s.last_error or s.failure_class or s.cost_unknown_reason or ""),
                ]
            )
        return _table(
            "Workstream|Step|Tool|Worker|Status|#Attempts|#Duration|#Cost|Message", rows, ids
        )

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
            [
                self.esc(scope),
                self.esc(text),
                _badge(self.esc(d.get("state"))),
                self.esc(d.get("detail") or ""),
                self.esc(_judged_by(d)),
            ]
            for (scope, text), d in latest.items()
        ]
        return _table("Scope|Criterion|State|Evidence|Judged by", rows)

    def event_log(self) -> str:
        skip = {"gate_passed", "gate_failed", "gate_skipped", "criterion", "probe"}
        rows = [
            [_when(e.ts), self.esc(e.kind), self.esc(e.step_id or ""), self.esc(json.dumps(e.data))]
            for e in self.events
            if e.kind not in skip
        ][-300:]
        return _table("Time|Event|Step|Data", rows) if rows else '<p class="muted">No events.</p>'


def _judged_by(criterion: dict[str, Any]) -> str:
    """Who decided a criterion: its reviewer (and the files it named), or uet's own check."""
    reviewer = criterion.get("reviewer")
    if not reviewer:
        return ""
    files = criterion.get("files") or []
    shown = f" on {', '.join(map(str, files))}" if files else ""
    kept = " (verdict kept from an earlier run)" if criterion.get("cached") else ""
    return f"{reviewer}{shown}{kept}"


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


def _cost_cell(cost: float, unknown_attempts: int) -> str:
    """A sum of costs that names the attempts it could not include."""
    if not unknown_attempts:
        return f"${cost:.4f}"
    return f"${cost:.4f} + {unknown_attempts} attempt(s) of unknown cost"


def _meter(cost: float, budget: float | None) -> str:
    if not budget:
        return '<span class="muted">no budget</span>'
    pct = 100.0 * cost / budget
    over = " over" if pct > 100 else ""
    bar = f'<span class="{over}" style="width:{min(pct, 100):.0f}%"></span>'
    return f'<div class="meter">{bar}</div>{pct:.0f}%'


def _badge(escaped: str) -> str:
    return f'<span class="badge s-{escaped}">{escaped.replace("_", " ")}</span>'


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


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
