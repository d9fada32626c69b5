"""Every text `uet` prints for its commands, in one place: the commands get data from the
library and hand it here. Marks and labels come from `observe.status`, so the run's output,
`uet status` and the live tree say the same thing for the same state. Imports of the library
stay inside the functions: every command module imports this one, `uet --help` included."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uet_doit.state.unknown_cost import cost_with_unknown

if TYPE_CHECKING:
    from uet_doit.bundle.model import Bundle
    from uet_doit.cache.commands import PruneReport, VerifyReport
    from uet_doit.errors import Problem
    from uet_doit.observe.status import RunStatus
    from uet_doit.plans.convert import Conversion
    from uet_doit.plans.dialect_convert import DialectConversion
    from uet_doit.state.records import BreakerRecord, RunRecord
    from uet_doit.tools.routing import StepRoute


def _first_line(text: str, width: int = 100) -> str:
    return text.splitlines()[0][:width] if text else ""


def validated(path: str, bundle: Bundle) -> str:
    steps = len(bundle.steps())
    return f"{path}: ok ({bundle.bundle_id}: {len(bundle.workstreams)} workstreams, {steps} steps)"


def validation_result(
    path: str,
    problems: Sequence[Problem],
    bundle: Bundle | None = None,
    missing: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """One file of `uet validate --json`: every problem, every missing input."""
    out: dict[str, Any] = {"file": path, "ok": not problems}
    if bundle is not None:
        out.update(
            bundle_id=bundle.bundle_id,
            workstreams=len(bundle.workstreams),
            steps=len(bundle.steps()),
        )
    out["problems"] = [{"where": p.where, "message": p.message, "hint": p.hint} for p in problems]
    out["missing_inputs"] = [{"step_id": s, "path": p} for s, p in missing]
    return out


def missing_inputs(path: str, missing: Sequence[tuple[str, str]], shown: int = 10) -> str:
    """`uet validate`'s warnings: inputs that do not exist and that no step creates."""
    lines = [
        f"{path}: warning: {input_path!r} (input of {step_id}) does not exist "
        "and no step creates it"
        for step_id, input_path in missing[:shown]
    ]
    more = f"{len(missing) - shown} more such inputs; " if len(missing) > shown else ""
    lines.append(
        f"TIP: {more}a step fails before its tool starts when an input is missing: "
        "create the file, or list it in the `create_files` of the step that makes it"
    )
    return "\n".join(lines)


def task_table(rows: Sequence[Mapping[str, str]], as_json: bool) -> str:
    """`uet list`: one line per step (task, workstream, tool, state, title), or JSON."""
    if as_json:
        return json.dumps(list(rows), indent=2)
    width = max((len(r["task"]) for r in rows), default=10)
    return "\n".join(
        f"{r['task']:<{width}}  {r['ws_id']:<20} {r['tool']:<8} {r['status']:<12} {r['name']}"
        + (f"  ({RUNS_WORDS[r['runs']]})" if r.get("runs") else "")
        for r in rows
    )


#: `parallel_ok: false` as `uet list` and `--dry-run` say it
RUNS_WORDS = {"alone": "runs alone", "in turn": "one at a time in its workstream"}


def criteria_lines(criteria: Iterable[Mapping[str, Any]], indent: str = "") -> list[str]:
    from uet_doit.observe.status import criterion_line  # lazy: start-up time

    return [indent + criterion_line(dict(c)) for c in criteria]


def run_status(st: RunStatus) -> str:
    """`uet status`: the run, its steps by workstream, gates, criteria and progress."""
    from uet_doit.observe.status import step_mark  # lazy: start-up time

    reason = f" - {st.reason}" if st.reason else ""
    lines = [f"run {st.run_id} ({st.bundle_id}): {st.status}{reason}"]
    ws_seen: str | None = None
    for s in st.steps:
        if s.ws_id != ws_seen:
            ws_seen = s.ws_id
            lines.append(f"{s.ws_id}")
        extra = f" attempts={s.attempts}" if s.attempts > 1 else ""
        if s.cost_usd is None:
            extra += f" cost unknown ({s.cost_unknown_reason})"
        elif s.cost_usd:
            extra += f" ${s.cost_usd:.4f}"
        if s.cached:
            extra += f" (from the cache, saved ${s.saved_usd:.4f})"
        if s.last_error:
            extra += f" - {_first_line(s.last_error)}"
        lines.append(f"  {step_mark(s.status).label:<11} {s.step_id}{extra}")
    for g in st.gates:
        outcome = g.get("outcome")
        message = "" if outcome == "passed" else f" - {_first_line(str(g.get('message', '')))}"
        lines.append(f"gate {g.get('gate_type')} of {g.get('scope')}: {outcome}{message}")
    lines += criteria_lines(st.criteria)
    eta = f" | ETA: {st.eta_seconds:.0f}s" if st.eta_seconds is not None else ""
    lines.append(
        f"Progress: {st.progress_pct:.0f}% ({st.completed_count}/{st.total_count}) | "
        f"Cost: {cost_with_unknown(st.total_cost_usd, st.unknown_cost_steps, 2)}{eta}"
        + (f" | Saved by the cache: ${st.saved_usd:.2f}" if st.cached_count else "")
    )
    return "\n".join(lines)


def run_list(rows: Sequence[RunRecord], store_path: str) -> str:
    """`uet runs`: newest first, or a sentence saying there are none yet."""
    if not rows:
        return f"no runs recorded in {store_path}; start one with `uet run FILE`"
    out = []
    for r in rows:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started))
        out.append(
            f"{r.run_id:<44} {r.status:<12} {started}  "
            + cost_with_unknown(r.cost, r.unknown_cost_steps)
        )
    return "\n".join(out)


def breakers(rows: Sequence[BreakerRecord]) -> str:
    if not rows:
        return "no breakers recorded (all closed)"
    out = []
    for r in rows:
        opened = time.strftime("%H:%M:%S", time.localtime(r.opened_at)) if r.opened_at else "-"
        out.append(f"{r.tool:<16} {r.state:<10} failures={r.failures} opened={opened}")
    return "\n".join(out)


def routes(table: Sequence[StepRoute]) -> str:
    """`uet route`: STEP, TOOL, FALLBACKS, WHY in aligned columns."""
    rows = [("STEP", "TOOL", "FALLBACKS", "WHY")]
    for r in table:
        first = r.tools[0] if r.tools else "(none)"
        rows.append((r.step_id, first, ", ".join(r.tools[1:]) or "-", r.reason))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + " " + row[3]
        for row in rows
    )


def bootstrap_report(
    report: Sequence[str], tools_found: Sequence[str], all_tools: Sequence[str]
) -> str:
    """`uet bootstrap`: one line per file, then tips for what is missing or was kept."""
    lines = list(report)
    if not tools_found:
        names = ", ".join(all_tools)
        lines.append(f"tip: no AI CLI ({names}) found on PATH; install one, then re-run")
    if any(line.startswith("kept ") for line in report):
        lines.append("tip: run `uet bootstrap --force` to replace the files kept above")
    return "\n".join(lines)


def import_skipped(problems: Sequence[Problem]) -> str:
    return "\n".join(f"skipped: {p.render()}" for p in problems)


def import_report(
    bundle: Mapping[str, Any] | None,
    problems: Sequence[Problem],
    warnings: Sequence[str],
    output: str | None,
) -> str:
    """`uet import` on stderr, after the bundle is written: what it holds, what was dropped."""
    lines: list[str] = []
    if bundle is not None:
        steps = sum(len(ws["steps"]) for ws in bundle["workstreams"])
        lines.append(
            f"imported {len(bundle['workstreams'])} workstream(s), {steps} step(s) from "
            f"{len(bundle['metadata']['imported_from'])} file(s) into bundle {bundle['bundle_id']}"
        )
        lines += [f"warning: {w}" for w in warnings]
        skipped = sorted({p.file for p in problems})
        if skipped:
            lines.append(f"could not import: {', '.join(skipped)}")
        if output:
            lines.append(f"wrote {output}")
    return "\n".join(lines)


def finding_line(ok: bool, what: str, advice: str) -> str:
    """One `uet doctor` finding: `ok   ...` or `FAIL ...` and what to do."""
    line = f"{'ok  ' if ok else 'FAIL'} {what}"
    return line + (f"\n     what to do: {advice}" if advice else "")


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def cache_stats(data: Mapping[str, Any], saved: float) -> str:
    """`uet cache stats`: the store, its size and age, what it saved this project."""
    return "\n".join(
        [
            f"store {data['store']}",
            f"  {data['entries']} entries, {data['blobs']} blobs ({data['blob_bytes']} bytes)",
            f"  oldest {_when(data['oldest'])}, newest {_when(data['newest'])}",
            f"  this project: {data['cached_attempts_here']} cached attempt(s), saved ${saved:.4f}",
        ]
    )


def cache_pruned(pruned: PruneReport) -> str:
    return (
        f"removed {pruned.entries} entries, {pruned.blobs} unused blobs and "
        f"{pruned.temporaries} left-over temporary files ({pruned.freed_bytes} bytes); "
        f"{pruned.kept_entries} entries kept"
    )


def cache_verified(checked: VerifyReport, store: str, repair: bool) -> str:
    """`uet cache verify`: what was checked, each damaged entry, what to do or what was done."""
    lines = [f"checked {checked.entries} entries and {checked.blobs_checked} blobs in {store}"]
    lines += [f"  DAMAGED {item['key'][:16]}: {item['problem']}" for item in checked.damaged]
    if checked.damaged and not repair:
        lines.append("runs treat these as misses; remove them with `uet cache verify --repair`")
    if checked.removed:
        lines.append(f"removed {checked.removed} damaged entries")
    return "\n".join(lines)


def bundle_summary(bundle: Mapping[str, Any]) -> list[str]:
    """`uet convert` on stderr: a total line, then one per workstream: what a user checks
    before running."""
    lines, steps, files = [], 0, 0
    for ws in bundle["workstreams"]:
        # a draft may spell a step's keys at step level, without `context`
        n = sum(len((s.get("context") or s).get("create_files") or []) for s in ws["steps"])
        steps, files = steps + len(ws["steps"]), files + n
        tag = f" [{ws['priority']}]" if ws.get("priority") else ""
        lines.append(f"  {ws['ws_id']}{tag}: {len(ws['steps'])} steps, {n} files to create")
    total = f"{len(bundle['workstreams'])} workstreams, {steps} steps, {files} files to create"
    return [f"bundle {bundle['bundle_id']}: {total}", *lines]


def convert_explained(conversion: Conversion, source: str) -> list[str]:
    """`uet convert --explain`: the recognised tree, one item a line
    (`plan.md:35  step  id: name  [rule]`), then what was left out and the warnings."""
    name = Path(source).name
    lines = [f"{name}: recognised by {conversion.mode}"]
    for t in conversion.traces:
        if t.what == "skipped":
            continue
        where = f"{name}:{t.line}"
        lines.append(f"{where:<{len(name) + 6}} {'  ' * t.depth}{t.what} {t.text}  [{t.rule}]")
    skipped = sorted((t for t in conversion.traces if t.what == "skipped"), key=lambda t: t.line)
    if skipped:
        lines.append("left out:")
        lines += [f"{name}:{t.line:<5} {t.text}  [{t.rule}]" for t in skipped]
    if conversion.warnings:
        lines.append("warnings:")
        lines += [f"  {w}" for w in conversion.warnings]
    return lines


def dialect_explained(done: DialectConversion) -> list[str]:
    """`uet convert --explain` of a dialect: which one and why, then each workstream and step
    with where it came from."""
    d = done.detected
    lines = [f"{', '.join(done.files)}: dialect {d.name} ({d.title}): {d.reason}"]
    for t in done.traces:
        lines.append(f"{t.where:<28} {'  ' * t.depth}{t.what} {t.text}  [{t.rule}]")
    if done.warnings:
        lines.append("warnings:")
        lines += [f"  {w}" for w in done.warnings]
    return lines
