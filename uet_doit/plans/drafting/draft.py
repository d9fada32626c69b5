"""`uet convert PLAN --with TOOL`: an AI tool drafts the bundle; uet checks it and sends it back.

The tool gets the plan (with line numbers), the bundle schema (`uet schema`) and the
deterministic conversion as a starting point. Each draft goes through exactly what `uet
validate` does (uet_doit.bundle.loader.load_bundle: schema, ids, cycles, paths, duplicate
outputs); its problems go back to the tool, up to `--max-fix-attempts` times. Only a valid
bundle is returned. Every call is a one-step run of the routine every step goes through
(plans/drafting/attempts.py): recorded in the run store, so `uet cost` shows it, redacted, reaped,
under the tool's breaker and, with `--max-cost-usd`, a budget.

Where a CLI has a structured-output option it is used, with the core of the format in the
strict schema subset those accept (draft_schema): codex `--output-schema` (+ `-o`, the last
message as a file), claude `--json-schema` (the answer in `structured_output`). gemini answers
in its JSON `response`; aider, which has neither, writes the draft to a file. The full
`uet schema` is in the prompt's files either way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uet_doit.bundle.loader import load_bundle
from uet_doit.bundle.schema import schema_text
from uet_doit.errors import BundleError, UetError, UsageError
from uet_doit.plans.convert import convert_plan
from uet_doit.plans.drafting.attempts import DraftRun
from uet_doit.plans.drafting.schema import draft_schema, without_nulls
from uet_doit.plans.drafting.trust import added_powers
from uet_doit.plans.plan_limits import check_plan_text
from uet_doit.plans.plan_markdown import slug
from uet_doit.run.context import new_run_id
from uet_doit.state.store import RunStore
from uet_doit.tools.routing import default_known_tools, get_adapter, load_router_config
from uet_doit.tools.structured import answer_text, json_object, structured_args

PROMPT_LIMIT = 96_000  # bytes; longer prompts put the JSON parts in files


@dataclass
class DraftRequest:
    """What `uet convert --with` was asked."""

    ai_tool: str
    plan_text: str
    source: str
    output: str | None = None
    max_fix_attempts: int | None = None  # None: router_config.json tools.TOOL, else 2
    unit_pattern: str | None = None
    tasks_section: str | None = None
    tool: str | None = None  # default tool_profile_id of the bundle's steps
    bundle_id: str | None = None
    allow_commands: bool = False  # accept commands, gates, scope... the conversion lacks
    max_cost_usd: float | None = None  # what the drafting calls may cost (a budget, fail)


@dataclass
class Drafted:
    bundle: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    calls: int = 0
    run_id: str = ""


def _numbered(text: str) -> str:
    return "\n".join(f"{n:>5} | {line}" for n, line in enumerate(text.split("\n"), start=1))


def _prompt(
    req: DraftRequest,
    start: dict[str, Any] | None,
    problems: list[str],
    previous: str | None,
    schema_rel: str,
    answer: str,
    attached: tuple[str, str] | None = None,
) -> str:
    """The request; `attached` (start, previous draft) names files that hold the JSON when
    it is too long for one command-line argument."""
    name = Path(req.source).name
    parts = [
        f"Convert the plan {name} (below) into a uet-doit workstream bundle: one JSON object "
        f"that follows the JSON Schema in {schema_rel} (the output of `uet schema`).",
        "Rules: one workstream per unit of work of the plan (phase, week, milestone, ...), "
        "`depends_on` in plan order unless the plan says otherwise, no dependency cycles; one "
        "step per task, `context.instruction` saying what to do, `context.create_files` the "
        "files the step creates (each file created by one step only), `context.files` the "
        "files it reads or edits; paths relative to the project root and inside it; ids of "
        "letters, digits, '-', '_' and '.'. Every workstream and step keeps "
        f'"x-source": "{name}:LINE", the plan line it comes from. No keys the schema does '
        "not define.",
        answer,
    ]
    if start is not None:
        intro = (
            "A deterministic conversion to start from (improve it; keep its ids and x-source "
            "where they fit)"
        )
        if attached:
            parts.append(f"{intro} is in {attached[0]}.")
        else:
            text = json.dumps(start, indent=2, ensure_ascii=False)
            parts.append(f"{intro}:\n```json\n{text}\n```")
    if problems:
        parts.append(
            "Your previous draft was checked like `uet validate` and has these problems; "
            "answer with the whole corrected bundle:\n" + "\n".join(f"- {p}" for p in problems)
        )
        if previous is not None and attached:
            parts.append(f"Your previous draft is in {attached[1]}.")
        elif previous is not None:
            parts.append("Your previous draft:\n```json\n" + previous.strip() + "\n```")
    parts.append(f"The plan {name}, with line numbers:\n{_numbered(req.plan_text)}")
    return "\n\n".join(parts)


def _answer_text(tool: str, stdout: Path | None, last: Path, draft_file: Path) -> str | None:
    """The draft in the tool's answer: structured output where the CLI has it, else a file."""
    if tool in ("codex", "claude", "gemini"):
        text = stdout.read_text(encoding="utf-8", errors="replace") if stdout else ""
        return answer_text(tool, text, last)
    if draft_file.exists():
        return draft_file.read_text(encoding="utf-8")
    return None


def _keep_sources(draft: dict[str, Any], start: dict[str, Any] | None) -> None:
    """x-source for what the draft left without: from the deterministic conversion's item of
    the same id, else the step creating the same file, else the step's workstream."""
    if start is None or not isinstance(draft.get("workstreams"), list):
        return
    known: dict[str, str] = {}
    by_file: dict[str, str] = {}
    for ws in start["workstreams"]:
        known[ws["ws_id"]] = ws["x-source"]
        for s in ws["steps"]:
            known[s["step_id"]] = s["x-source"]
            by_file.update(dict.fromkeys(s["context"].get("create_files", []), s["x-source"]))
    for ws in draft["workstreams"]:
        if not isinstance(ws, dict):
            continue
        if "x-source" not in ws and ws.get("ws_id") in known:
            ws["x-source"] = known[ws["ws_id"]]
        for step in ws.get("steps") or []:
            if not isinstance(step, dict) or "x-source" in step:
                continue
            context: dict[str, Any] = (
                step["context"] if isinstance(step.get("context"), dict) else {}
            )
            files = [f for f in context.get("create_files") or [] if f in by_file]
            source = known.get(str(step.get("step_id"))) or (by_file[files[0]] if files else None)
            source = source or ws.get("x-source")
            if source:
                step["x-source"] = source


def _check(data: dict[str, Any], path: Path, root: Path) -> list[str]:
    """Exactly `uet validate`: the draft as a file, loaded and checked against the project."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    try:
        load_bundle(path, root, known_tools=default_known_tools())
    except BundleError as exc:
        return [p.render().replace(f"{path}: ", "", 1) for p in exc.problems]
    return []


def draft_bundle(req: DraftRequest, root: Path) -> Drafted:
    """Ask the tool, check, send the problems back; the first valid draft wins."""
    check_plan_text(req.plan_text, req.source)  # before convert_plan, whose refusals are notes
    notes: list[str] = []
    try:
        start: dict[str, Any] | None = convert_plan(
            req.plan_text,
            source=req.source,
            unit_pattern=req.unit_pattern,
            tasks_section=req.tasks_section,
            tool=req.tool,
            bundle_id=req.bundle_id,
            root=root,
        ).bundle
    except UsageError as exc:
        start = None
        notes.append(f"no deterministic starting point: {exc.message}")
    bundle_id = req.bundle_id or (start or {}).get("bundle_id") or slug(Path(req.source).stem, 60)
    config = load_router_config(root)
    get_adapter(req.ai_tool, config, root)  # a broken custom adapter: said before any call
    settings = config.tool(req.ai_tool)
    rounds = req.max_fix_attempts
    if rounds is None:
        rounds = 2 if settings.max_fix_attempts is None else settings.max_fix_attempts
    if rounds < 0:
        raise UsageError("--max-fix-attempts must be 0 or more")
    run_id = f"{new_run_id(bundle_id)}-convert"
    if RunStore(root).run(run_id) is not None:  # another convert of it this very second
        run_id = f"{new_run_id(bundle_id, unique=True)}-convert"
    work = root / ".uet" / "convert" / run_id
    work.mkdir(parents=True, exist_ok=True)
    schema = work / "bundle.schema.json"
    schema.write_text(schema_text(), encoding="utf-8")
    strict = work / "draft.schema.json"
    strict.write_text(json.dumps(draft_schema(), indent=2) + "\n", encoding="utf-8")
    draft_file = work / "draft.json"
    last = work / "last-message.json"
    rel = os.path.relpath
    creates: tuple[str, ...] = ()
    if req.ai_tool in ("codex", "claude", "gemini"):
        answer = "Answer with the JSON object only, no other text; change no file."
    else:
        answer = f"Write the JSON object, and nothing else, to {rel(draft_file, root)}."
        creates = (rel(draft_file, root),)
    run = DraftRun(
        root,
        run_id,
        bundle_id,
        req.ai_tool,
        timeout=settings.timeout_seconds,
        max_cost_usd=req.max_cost_usd,
    )
    run.start(str(Path(req.output).resolve()) if req.output else "")
    problems: list[str] = []
    previous: str | None = None
    for attempt in range(1, rounds + 2):
        for stale in (draft_file, last):
            stale.unlink(missing_ok=True)
        prompt = _prompt(req, start, problems, previous, rel(schema, root), answer)
        reads: tuple[str, ...] = ()
        if len(prompt.encode()) > PROMPT_LIMIT:  # one argv string holds at most 128 KiB
            start_file, previous_file = work / "start.json", work / f"previous-{attempt}.json"
            start_file.write_text(json.dumps(start, indent=2, ensure_ascii=False) + "\n")
            previous_file.write_text(previous or "", encoding="utf-8")
            reads = (rel(start_file, root), rel(previous_file, root))
            prompt = _prompt(req, start, problems, previous, rel(schema, root), answer, reads)
        call = run.call(
            prompt,
            reads=reads,
            creates=creates,
            options={"args": [*settings.args, *structured_args(req.ai_tool, strict, last)]},
            keep=work / "before",
        )
        if call.undone:
            notes.append(
                f"{req.ai_tool} changed files while drafting (it may change none); refused: "
                + "; ".join(call.undone)
            )
        if not call.outcome.ok:
            run.end(False, call.outcome.message[:200])
            where = f"its output is in {rel(call.stdout_path, root)}; " if call.stdout_path else ""
            raise UetError(
                f"{req.ai_tool} failed drafting the bundle: {call.outcome.message}",
                f"{where}`uet convert {req.source}` (without --with) needs no tool",
            )
        try:
            previous = _answer_text(req.ai_tool, call.stdout_path, last, draft_file)
        except RecursionError:  # a structured answer nested too deep for the CLI's JSON
            previous = None
        data, why = json_object(previous or "")
        if data is None:
            problems = [why or "no answer"]
            continue
        data = without_nulls(data)
        _keep_sources(data, start)
        if req.tool and "tool_profile_id" not in data:
            data["tool_profile_id"] = req.tool
        if req.bundle_id:
            data["bundle_id"] = req.bundle_id  # --bundle-id wins over the draft's
        problems = _check(data, work / f"draft-{attempt}.json", root)
        if not problems:
            added = added_powers(data, start)
            if req.allow_commands:
                notes += [p.note() for p in added]
            else:
                problems = [p.problem() for p in added]
        if not problems:
            run.end(True)
            notes.append(f"{req.ai_tool} drafted it in {attempt} call(s); run {run_id} (uet cost)")
            return Drafted(data, notes, attempt, run_id)
        notes.append(f"draft {attempt}: {len(problems)} problem(s), sent back to {req.ai_tool}")
    run.end(False, "no valid draft")
    shown = "\n".join(f"  {p}" for p in problems[:12])
    raise UetError(
        f"{req.ai_tool} gave no valid bundle in {rounds + 1} call(s); nothing "
        f"was written. Problems of the last draft ({rel(work, root)}):\n{shown}",
        "allow more rounds with --max-fix-attempts N, or convert without --with and edit "
        "the result",
    )
