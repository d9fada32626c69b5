"""uet-doit against raw doit on generated bundles (issue 9): one run, one table, one JSON file.

Every measurement runs in a fresh subprocess (through a tiny wrapper that also reads the
child's peak RSS), in a fresh temp dir, so import and start-up costs count as a user sees
them. Raw doit runs a generated dodo.py whose tasks mirror what uet compiles: same
file_dep/targets/task_dep, a `config_changed` uptodate, one group task per workstream.

    python benchmarks/run.py --only overhead  # issue 24's targets at 1k/10k, ~3 min
    python benchmarks/run.py --quick          # sizes 100 and 1k, one repetition, < 2 min
    python benchmarks/run.py                  # sizes 100, 1k, 10k; chain 1k/5k/10k
    python benchmarks/run.py --sizes 100 500 --only run list
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
BASENAME = "bench"
GROUPS = ("overhead", "startup", "run", "variants", "makespan", "chain")

#: run the command in argv[2:] in cwd argv[1]; print wall time and peak RSS of the child
_WRAPPER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.run(sys.argv[2:], cwd=sys.argv[1], stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall": wall, "rss_kb": rss, "rc": p.returncode,
                  "err": p.stderr[-1500:].decode(errors="replace")}))
"""

#: `uet` with one thing swapped in-process, to isolate its cost (benchmark-side only)
_NO_EXIT_WRAPPER = (
    "import uet_doit.tools.process as p\n"
    "_direct = p.run_process\n"
    "p.run_process = lambda *a, exit_file=None, **k: _direct(*a, **k)\n"
)
_UET_PATCHES = {
    "": "",
    "dbm": "import uet_doit.run.doit.config as c; c.DOIT_CONFIG['backend'] = 'dbm'\n",
    "console": "import uet_doit.observe.progress as r; r.choose_reporter = lambda *a, **k: None\n",
    "no-exit-wrapper": _NO_EXIT_WRAPPER,
}

#: the raw doit dodo.py; tasks come from tasks.json so 10k tasks do not mean 10k lines to parse
_DODO = """\
import json
from doit.tools import config_changed

DOIT_CONFIG = {{"backend": {backend!r}, "dep_file": ".doit.db", "verbosity": 1}}


def task_{base}():
    with open("tasks.json", encoding="utf-8") as fh:
        spec = json.load(fh)
    yield {{"basename": {base!r}, "name": None, "doc": "benchmark"}}
    for t in spec:
        if t["actions"] is None:
            yield {{"name": t["name"], "actions": None, "task_dep": t["task_dep"]}}
            continue
        yield {{
            "name": t["name"],
            "actions": t["actions"],
            "file_dep": t["file_dep"],
            "targets": t["targets"],
            "task_dep": t["task_dep"],
            "uptodate": [config_changed(t["sig"])],
            "verbosity": 1,
        }}
"""


# -- workloads --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    sid: str
    argv: tuple[str, ...]
    creates: tuple[str, ...]
    deps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Workstream:
    ws_id: str
    steps: tuple[Step, ...]
    deps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Workload:
    shape: str
    size: int
    workstreams: tuple[Workstream, ...]
    sleep: float = 0.0

    @property
    def steps(self) -> list[Step]:
        return [s for ws in self.workstreams for s in ws.steps]


def _step(i: int, sleep: float, deps: tuple[str, ...] = ()) -> Step:
    out = f"out/s{i:05d}"
    if sleep > 0:
        # the .start file lets the makespan be read back from mtimes, for doit and uet alike
        argv: tuple[str, ...] = ("sh", "-c", f"touch {out}.start; sleep {sleep}; touch {out}")
    else:
        argv = ("touch", out)
    return Step(f"s{i:05d}", argv, (out,), deps)


def make_workload(shape: str, size: int, layers: int = 10, sleep: float = 0.0) -> Workload:
    """fan: independent steps; chain: each step depends on the previous one; layered: `layers`
    workstreams, each depending on the previous one, with independent steps inside."""
    if shape == "fan":
        wss: tuple[Workstream, ...] = (
            Workstream("ws0", tuple(_step(i, sleep) for i in range(size))),
        )
    elif shape == "chain":
        steps = tuple(_step(i, sleep, (f"s{i - 1:05d}",) if i else ()) for i in range(size))
        wss = (Workstream("ws0", steps),)
    elif shape == "layered":
        k = max(1, min(layers, size))
        per, extra = divmod(size, k)
        built: list[Workstream] = []
        i = 0
        for layer in range(k):
            count = per + (layer < extra)
            steps = tuple(_step(j, sleep) for j in range(i, i + count))
            i += count
            deps = (f"ws{layer - 1}",) if layer else ()
            built.append(Workstream(f"ws{layer}", steps, deps))
        wss = tuple(built)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return Workload(shape, size, wss, sleep)


def bundle_dict(w: Workload) -> dict[str, Any]:
    return {
        "bundle_id": BASENAME,
        "workstreams": [
            {
                "ws_id": ws.ws_id,
                "depends_on": list(ws.deps),
                "steps": [
                    {
                        "step_id": s.sid,
                        "command": list(s.argv),
                        "create_files": list(s.creates),
                        **({"depends_on": list(s.deps)} if s.deps else {}),
                    }
                    for s in ws.steps
                ],
            }
            for ws in w.workstreams
        ],
    }


def raw_tasks(w: Workload) -> list[dict[str, Any]]:
    """What uet's compiler makes of the bundle, as plain CmdAction task dicts."""
    outputs = {s.sid: list(s.creates) for s in w.steps}
    tasks: list[dict[str, Any]] = []
    for ws in w.workstreams:
        for s in ws.steps:
            file_dep = [p for d in s.deps for p in outputs[d]]
            task_dep = [f"{BASENAME}:{d}" for d in (*s.deps, *ws.deps)]
            tasks.append(
                {
                    "name": s.sid,
                    "actions": [list(s.argv)],
                    "file_dep": file_dep,
                    "targets": list(s.creates),
                    "task_dep": task_dep,
                    "sig": {"command": list(s.argv), "create_files": list(s.creates)},
                }
            )
        tasks.append(
            {
                "name": ws.ws_id,
                "actions": None,
                "task_dep": [f"{BASENAME}:{s.sid}" for s in ws.steps],
            }
        )
    return tasks


def prepare_dir(w: Workload, kind: str, backend: str = "dbm") -> Path:
    """A fresh project dir with `out/` and either bundle.json (uet) or dodo.py (raw doit)."""
    root = Path(tempfile.mkdtemp(prefix=f"uet-bench-{kind}-{w.shape}-{w.size}-"))
    (root / "out").mkdir()
    if kind == "uet":
        (root / "bundle.json").write_text(json.dumps(bundle_dict(w)), encoding="utf-8")
    else:
        (root / "tasks.json").write_text(json.dumps(raw_tasks(w)), encoding="utf-8")
        (root / "dodo.py").write_text(_DODO.format(backend=backend, base=BASENAME), "utf-8")
    return root


# -- measuring --------------------------------------------------------------------------------
@dataclass
class Measurement:
    wall: float
    rss_mb: float
    ok: bool
    error: str = ""


def child_env() -> dict[str, str]:
    """No inherited run id; bytecode cached (in a temp prefix, not the source tree) even where
    PYTHONDONTWRITEBYTECODE is set, so start-up is what an installed package costs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UET_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "uet-bench-pycache")
    return env


def measure(cwd: Path, argv: Sequence[str]) -> Measurement:
    """Run argv in cwd in a fresh subprocess; wall time and peak RSS of that subprocess."""
    env = child_env()
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(cwd), *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return Measurement(0.0, 0.0, False, proc.stderr[-1500:])
    ok = data["rc"] == 0
    return Measurement(data["wall"], data["rss_kb"] / 1024, ok, "" if ok else data["err"])


def doit_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "doit", *args]


def uet_cmd(*args: str, patch: str = "") -> list[str]:
    if not patch:
        return [sys.executable, "-m", "uet_doit", *args]
    code = (
        _UET_PATCHES[patch] + "import sys\nfrom uet_doit.cli.main import main\nsys.exit(main())\n"
    )
    return [sys.executable, "-c", code, *args]


def run_cmd(kind: str, jobs: int = 1, ptype: str = "process", patch: str = "") -> list[str]:
    par = ["-n", str(jobs), "-P", ptype] if jobs > 1 else []
    if kind == "uet":
        extra = ["--reporter", "json"] if patch == "json" else []
        return uet_cmd("run", "bundle.json", *par, *extra, patch="" if patch == "json" else patch)
    return doit_cmd("run", *par, BASENAME)


def outputs_done(root: Path, w: Workload) -> bool:
    return all((root / p).exists() for s in w.steps for p in s.creates)


def makespan(root: Path, w: Workload) -> float:
    """First step start to last step end, from the .start and output mtimes."""
    starts = [(root / f"{s.creates[0]}.start").stat().st_mtime_ns for s in w.steps]
    ends = [(root / s.creates[0]).stat().st_mtime_ns for s in w.steps]
    return (max(ends) - min(starts)) / 1e9


@dataclass
class Flow:
    """One project dir taken through first run, no-op re-run and (optionally) list/validate."""

    first: Measurement
    noop: Measurement
    listing: Measurement | None = None
    validate: Measurement | None = None
    makespan: float | None = None


def run_flow(
    w: Workload,
    kind: str,
    *,
    backend: str = "dbm",
    patch: str = "",
    jobs: int = 1,
    ptype: str = "process",
    with_list: bool = True,
    with_noop: bool = True,
    keep: bool = False,
) -> Flow:
    root = prepare_dir(w, kind, backend)
    try:
        cmd = run_cmd(kind, jobs, ptype, patch)
        first = measure(root, cmd)
        if first.ok and not outputs_done(root, w):
            first.ok, first.error = False, "exit 0 but outputs missing"
        span = makespan(root, w) if first.ok and w.sleep > 0 else None
        noop = measure(root, cmd) if with_noop else Measurement(0.0, 0.0, True)
        listing = validate = None
        if with_list:
            listing = measure(
                root,
                uet_cmd("list", "bundle.json")
                if kind == "uet"
                else doit_cmd("list", "--all", "--status"),
            )
            if kind == "uet":
                validate = measure(root, uet_cmd("validate", "bundle.json"))
        return Flow(first, noop, listing, validate, span)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def median_flow(flows: Sequence[Flow]) -> Flow:
    """Per-field median over repetitions (a failed repetition makes the field failed)."""

    def med(items: Sequence[Measurement | None]) -> Measurement | None:
        ms = [m for m in items if m is not None]
        if not ms:
            return None
        return Measurement(
            statistics.median(m.wall for m in ms),
            max(m.rss_mb for m in ms),
            all(m.ok for m in ms),
            next((m.error for m in ms if not m.ok), ""),
        )

    spans = [f.makespan for f in flows if f.makespan is not None]
    first = med([f.first for f in flows])
    noop = med([f.noop for f in flows])
    assert first is not None and noop is not None
    return Flow(
        first,
        noop,
        med([f.listing for f in flows]),
        med([f.validate for f in flows]),
        statistics.median(spans) if spans else None,
    )


# -- results ----------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    size: int | str
    raw: float | None
    uet: float | None
    unit: str = "s"
    target: str = "-"
    passed: bool | None = None
    note: str = ""
    paired: float | None = None  # median of uet/raw per interleaved pair, when measured so

    @property
    def ratio(self) -> float | None:
        if self.paired is not None:
            return self.paired
        if self.raw and self.uet is not None:
            return self.uet / self.raw
        return None


@dataclass
class Config:
    sizes: list[int]
    chain_sizes: list[int]
    shapes: list[str] = field(default_factory=lambda: ["fan", "chain", "layered"])
    groups: list[str] = field(default_factory=lambda: list(GROUPS))
    reps: int = 1
    variant_size: int = 1000
    layers: int = 10
    sleep: float = 0.5
    jobs: int = 8
    keep: bool = False
    mode: str = "custom"
    overhead_sizes: tuple[int, int] = (1000, 10000)
    overhead_reps: int = 5


@dataclass
class Suite:
    config: Config
    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = print
    cache: dict[str, Flow] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        self.log(format_row(row))

    def flows(self, key: str, w: Workload, kind: str, reps: int, **kw: Any) -> Flow:
        """Median over `reps` fresh flows; a key measured before is reused, not re-run."""
        if key in self.cache:
            return self.cache[key]
        flow = self.cache[key] = median_flow(
            [run_flow(w, kind, keep=self.config.keep, **kw) for _ in range(reps)]
        )
        self.raw[key] = asdict(flow)
        for m in (flow.first, flow.noop, flow.listing, flow.validate):
            if m is not None and not m.ok:
                self.log(f"  ! {key} failed: {m.error.strip()[-400:]}")
        return flow


def _wall(m: Measurement | None) -> float | None:
    return m.wall if m is not None and m.ok else None


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def reps_for(cfg: Config, size: int) -> int:
    return cfg.reps if size <= 1000 else 1


LIST_CMDS = {"uet": uet_cmd("list", "bundle.json"), "raw": doit_cmd("list", "--all", "--status")}


def _load() -> float:
    return os.getloadavg()[0]


def _interleaved(
    reps: int, measure_one: Callable[[str], Measurement], log: Callable[[str], None], what: str
) -> dict[str, list[Measurement]]:
    """`reps` pairs, raw doit and uet back to back, the order swapped every pair, so load
    that comes and goes weighs on both alike."""
    got: dict[str, list[Measurement]] = {"raw": [], "uet": []}
    for i in range(reps):
        for kind in ("raw", "uet") if i % 2 == 0 else ("uet", "raw"):
            m = measure_one(kind)
            if not m.ok:
                log(f"  ! {what} {kind} failed: {m.error.strip()[-400:]}")
            got[kind].append(m)
    return got


def _paired_row(
    name: str, size: int, got: dict[str, list[Measurement]], target: str, limit: float | None
) -> Row:
    """Medians of each side, and the median of uet/raw over the pairs (the ratio shown)."""
    pairs = [(r.wall, u.wall) for r, u in zip(got["raw"], got["uet"], strict=True)]
    ok = all(m.ok for ms in got.values() for m in ms) and bool(pairs)
    raw = statistics.median(r for r, _ in pairs) if ok else None
    uet = statistics.median(u for _, u in pairs) if ok else None
    paired = statistics.median(u / r for r, u in pairs) if ok else None
    spread = f"uet {min(u for _, u in pairs):.2f}-{max(u for _, u in pairs):.2f}s" if ok else ""
    row = Row(name, size, raw, uet, target=target, paired=paired, note=spread)
    if limit is not None:
        row.passed = _at_most(paired, limit)
    return row


def bench_overhead(s: Suite) -> None:
    """Issue 24's targets, fan of `touch` steps: first run at 1k <= 1.3x raw doit, no-op
    re-run at 1k and 10k <= 1.5x, `uet list` at 10k <= 1.5 s. Raw doit and uet are
    measured in interleaved pairs (fresh dirs for each first run), median over the pairs."""
    cfg = s.config
    small, big = cfg.overhead_sizes
    reps = cfg.overhead_reps
    loads = [_load()]
    s.log(f"  overhead: {reps} interleaved pairs per row; load {loads[0]:.1f}")

    w = make_workload("fan", small)
    roots: dict[str, list[Path]] = {"raw": [], "uet": []}

    def first_small(kind: str) -> Measurement:
        root = prepare_dir(w, kind)
        roots[kind].append(root)
        m = measure(root, run_cmd(kind))
        if m.ok and not outputs_done(root, w):
            m.ok, m.error = False, "exit 0 but outputs missing"
        return m

    try:
        first = _interleaved(reps, first_small, s.log, f"first run {small}")
        s.add(_paired_row("overhead: first run fan", small, first, "<=1.3x", 1.3))
        turn = {"raw": 0, "uet": 0}

        def noop_small(kind: str) -> Measurement:
            root = roots[kind][turn[kind] % len(roots[kind])]
            turn[kind] += 1
            return measure(root, run_cmd(kind))

        noop = _interleaved(reps, noop_small, s.log, f"no-op {small}")
        s.add(_paired_row("overhead: no-op re-run fan", small, noop, "<=1.5x", 1.5))
    finally:
        if not cfg.keep:
            for root in (*roots["raw"], *roots["uet"]):
                shutil.rmtree(root, ignore_errors=True)

    w = make_workload("fan", big)
    big_roots = {kind: prepare_dir(w, kind) for kind in ("raw", "uet")}
    try:
        setup = _interleaved(1, lambda k: measure(big_roots[k], run_cmd(k)), s.log, "first 10k")
        s.add(_paired_row("overhead: first run fan (once)", big, setup, "-", None))
        noop = _interleaved(
            reps, lambda k: measure(big_roots[k], run_cmd(k)), s.log, f"no-op {big}"
        )
        s.add(_paired_row("overhead: no-op re-run fan", big, noop, "<=1.5x", 1.5))
        listing = _interleaved(
            reps, lambda k: measure(big_roots[k], LIST_CMDS[k]), s.log, f"list {big}"
        )
        row = _paired_row("overhead: list (doit --all --status)", big, listing, "uet<=1.5s", None)
        row.passed = _at_most(row.uet, 1.5)
        s.add(row)
    finally:
        if not cfg.keep:
            for root in big_roots.values():
                shutil.rmtree(root, ignore_errors=True)
    loads.append(_load())
    s.raw["overhead_load"] = loads
    s.log(f"  overhead: load {loads[0]:.1f} before, {loads[1]:.1f} after")


def bench_startup(s: Suite) -> None:
    """Interpreter + import cost, the floor under every other number."""
    root = Path(tempfile.mkdtemp(prefix="uet-bench-startup-"))
    try:
        raw = [measure(root, doit_cmd("--version")) for _ in range(3)]
        uet = [measure(root, uet_cmd("--version")) for _ in range(3)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    s.add(Row("startup (--version)", "-", min(m.wall for m in raw), min(m.wall for m in uet)))


def bench_runs(s: Suite) -> None:
    """First run, no-op re-run, list and validate, per shape and size; RSS at the top size."""
    cfg = s.config
    top = max(cfg.sizes)
    for shape in cfg.shapes:
        if shape == "chain" and "chain" in cfg.groups:
            continue  # chains get their own sizes below
        for size in cfg.sizes:
            w = make_workload(shape, size, cfg.layers)
            reps = reps_for(cfg, size)
            raw = s.flows(f"{shape}-{size}-raw", w, "raw", reps)
            uet = s.flows(f"{shape}-{size}-uet", w, "uet", reps)
            s.add(Row(f"first run {shape}", size, _wall(raw.first), _wall(uet.first)))
            s.add(Row(f"no-op re-run {shape}", size, _wall(raw.noop), _wall(uet.noop)))
            s.add(Row(f"list {shape}", size, _wall(raw.listing), _wall(uet.listing)))
            if shape == "fan":
                v = _wall(uet.validate)
                row = Row("validate", size, None, v)
                if size == top:
                    row.target, row.passed = "uet<=1s", _at_most(v, 1.0)
                s.add(row)
            if shape == "fan" and size == top:
                for what, r, u in (
                    ("peak RSS run", raw.first, uet.first),
                    ("peak RSS list", raw.listing, uet.listing),
                ):
                    rss_u = u.rss_mb if u is not None else None
                    s.add(
                        Row(
                            f"{what} {shape}",
                            size,
                            r.rss_mb if r is not None else None,
                            rss_u,
                            "MB",
                            "uet<=300MB",
                            _at_most(rss_u, 300.0),
                        )
                    )


def bench_variants(s: Suite) -> None:
    """Durability and reporting costs, fan at one size: each row is raw doit (dbm) against
    one variant: another doit backend on the same dodo.py, or uet with one thing swapped."""
    cfg = s.config
    w = make_workload("fan", cfg.variant_size)
    reps = reps_for(cfg, cfg.variant_size)
    base = s.flows(f"fan-{w.size}-raw", w, "raw", reps, with_list=False)
    variants: list[tuple[str, str, dict[str, Any]]] = [
        ("raw doit, backend sqlite3", "raw", {"backend": "sqlite3"}),
        ("raw doit, backend uet-sqlite", "raw", {"backend": "uet-sqlite"}),
        ("uet run (uet-sqlite, plain)", "uet", {}),
        ("uet run, backend dbm", "uet", {"patch": "dbm"}),
        ("uet run --reporter json", "uet", {"patch": "json"}),
        ("uet run, tools started directly (no reaper)", "uet", {"patch": "no-exit-wrapper"}),
    ]
    if cfg.mode != "quick":
        variants.append(("uet run, doit console reporter", "uet", {"patch": "console"}))
    for label, kind, kw in variants:
        extra = kw.get("backend", kw.get("patch"))
        key = f"fan-{w.size}-{kind}" + (f"-{extra}" if extra else "")
        flow = s.flows(key, w, kind, reps, with_list=False, **kw)
        s.add(Row(f"first: {label}", w.size, _wall(base.first), _wall(flow.first)))
        s.add(Row(f"no-op: {label}", w.size, _wall(base.noop), _wall(flow.noop)))


def bench_makespan(s: Suite) -> None:
    """Sleeping steps at -n N: makespan (first start to last end) against the ideal."""
    cfg = s.config
    n = cfg.jobs
    cases = [
        ("fan", make_workload("fan", 4 * n, sleep=cfg.sleep), cfg.sleep * 4),
        ("layered", make_workload("layered", 4 * n, layers=4, sleep=cfg.sleep), cfg.sleep * 4),
    ]
    for shape, w, ideal in cases:
        quick_skip = cfg.mode == "quick" and shape == "layered"
        for ptype in ("process",) if quick_skip else ("process", "thread"):
            kw = {"jobs": n, "ptype": ptype, "with_list": False, "with_noop": False}
            raw = s.flows(f"makespan-{shape}-{ptype}-raw", w, "raw", 1, **kw)
            uet = s.flows(f"makespan-{shape}-{ptype}-uet", w, "uet", 1, **kw)
            s.add(
                Row(
                    f"makespan {shape} -n{n} -P {ptype}",
                    w.size,
                    raw.makespan,
                    uet.makespan,
                    target=f"uet<=1.1x ideal {ideal:.1f}s",
                    passed=_at_most(uet.makespan, 1.1 * ideal),
                )
            )
            s.add(Row(f"  wall {shape} -P {ptype}", w.size, _wall(raw.first), _wall(uet.first)))


def bench_chain(s: Suite) -> None:
    """Deep chains: first-run time per step at each size; linear if it stays flat."""
    cfg = s.config
    per_step: dict[int, float] = {}
    for size in cfg.chain_sizes:
        w = make_workload("chain", size)
        reps = reps_for(cfg, size)
        raw = s.flows(f"chain-{size}-raw", w, "raw", reps, with_list=size == max(cfg.chain_sizes))
        uet = s.flows(f"chain-{size}-uet", w, "uet", reps, with_list=size == max(cfg.chain_sizes))
        s.add(Row("first run chain", size, _wall(raw.first), _wall(uet.first)))
        s.add(Row("no-op re-run chain", size, _wall(raw.noop), _wall(uet.noop)))
        r, u = _wall(raw.first), _wall(uet.first)
        s.add(
            Row(
                "  per step chain",
                size,
                None if r is None else 1000 * r / size,
                None if u is None else 1000 * u / size,
                "ms",
            )
        )
        if u is not None:
            per_step[size] = u / size
        if raw.listing is not None:
            s.add(Row("list chain", size, _wall(raw.listing), _wall(uet.listing)))
    row = linearity_row(per_step)
    if row is not None:
        s.add(row)


def linearity_row(per_step: dict[int, float]) -> Row | None:
    """Marginal cost per step (start-up cancels out) of the last size step against the first:
    1k->5k against 5k->10k by default. Linear when it stays flat (<= 1.25x)."""
    sizes = sorted(k for k in per_step if k >= 1000)
    if len(sizes) < 3:
        return None
    total = {k: per_step[k] * k for k in sizes}

    def marginal(a: int, b: int) -> float:
        return (total[b] - total[a]) / (b - a)

    first, last = marginal(sizes[0], sizes[1]), marginal(sizes[-2], sizes[-1])
    growth = last / first
    return Row(
        f"chain linearity marginal {1000 * first:.1f}->{1000 * last:.1f}ms",
        sizes[-1],
        None,
        growth,
        "x",
        "<=1.25x",
        growth <= 1.25,
    )


def run_suite(cfg: Config, log: Callable[[str], None] = print) -> Suite:
    suite = Suite(cfg, log=log)
    warm = Path(tempfile.mkdtemp(prefix="uet-bench-warm-"))
    for argv in (doit_cmd("--version"), uet_cmd("--version")):  # fill the bytecode cache
        measure(warm, argv)
    shutil.rmtree(warm, ignore_errors=True)
    log(header())
    steps: list[tuple[str, Callable[[Suite], None]]] = [
        ("overhead", bench_overhead),
        ("startup", bench_startup),
        ("run", bench_runs),
        ("variants", bench_variants),
        ("makespan", bench_makespan),
        ("chain", bench_chain),
    ]
    for group, fn in steps:
        if group in cfg.groups and (group != "chain" or "chain" in cfg.shapes):
            fn(suite)
    return suite


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}{unit}" if unit in ("MB", "ms") else f"{value:.2f}{unit}"


def header() -> str:
    return (
        f"{'name':<40} {'size':>6} {'raw doit':>9} {'uet':>9} {'ratio':>6}  {'target':<26} result"
        "  note"
    )


def format_row(r: Row) -> str:
    ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
    verdict = {True: "PASS", False: "FAIL", None: ""}[r.passed]
    return (
        f"{r.name:<40} {r.size!s:>6} {_fmt(r.raw, r.unit):>9} {_fmt(r.uet, r.unit):>9} "
        f"{ratio:>6}  {r.target:<26} {verdict:<6}  {r.note}"
    ).rstrip()


def machine() -> dict[str, Any]:
    import doit

    def version(pkg: str) -> str:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as v

        try:
            return v(pkg)
        except PackageNotFoundError:
            return "?"

    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=HERE,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "uet_doit"],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split("\n")
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load": os.getloadavg()[0],
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "doit": ".".join(map(str, doit.__version__)),
        "uet_doit": version("uet-doit"),
        "git": rev or "?",
        "uet_doit_dirty_files": len([line for line in dirty if line.strip()]),
    }


def write_json(suite: Suite, directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    data = {
        "machine": machine(),
        "config": asdict(suite.config),
        "rows": [{**asdict(r), "ratio": r.ratio} for r in suite.rows],
        "measurements": suite.raw,
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def parse_args(argv: Sequence[str] | None) -> Config:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="sizes 100 and 1k, one repetition")
    p.add_argument("--sizes", type=int, nargs="+", help="fan/layered sizes (default 100 1k 10k)")
    p.add_argument("--chain-sizes", type=int, nargs="+", help="default 1k 5k 10k (quick: 100 1k)")
    p.add_argument("--shapes", nargs="+", choices=("fan", "chain", "layered"))
    p.add_argument("--only", nargs="+", choices=GROUPS, help="measure only these groups")
    p.add_argument("--reps", type=int, help="repetitions at sizes <= 1k (median; default 3)")
    p.add_argument(
        "--overhead-reps", type=int, help="interleaved pairs per overhead row (3 quick, else 5)"
    )
    p.add_argument(
        "--overhead-sizes",
        type=int,
        nargs=2,
        default=(1000, 10000),
        metavar=("SMALL", "BIG"),
        help="overhead group: first run + no-op at SMALL; no-op + list at BIG",
    )
    p.add_argument("--variant-size", type=int, default=1000)
    p.add_argument("--sleep", type=float, default=0.5, help="seconds per makespan step")
    p.add_argument("--keep", action="store_true", help="keep the temp project dirs")
    a = p.parse_args(argv)
    sizes = a.sizes or ([100, 1000] if a.quick else [100, 1000, 10000])
    chain = a.chain_sizes or ([100, 1000] if a.quick else [1000, 5000, 10000])
    cfg = Config(
        sizes=sizes,
        chain_sizes=chain,
        reps=a.reps or (1 if a.quick else 3),
        variant_size=a.variant_size,
        sleep=a.sleep,
        keep=a.keep,
        mode="quick" if a.quick else ("custom" if a.sizes else "full"),
        overhead_sizes=(a.overhead_sizes[0], a.overhead_sizes[1]),
        overhead_reps=a.overhead_reps or (3 if a.quick else 5),
    )
    if a.shapes:
        cfg.shapes = list(a.shapes)
    if a.only:
        cfg.groups = list(a.only)
    return cfg


def summary(rows: Iterable[Row]) -> str:
    checked = [r for r in rows if r.passed is not None]
    failed = [r for r in checked if not r.passed]
    text = f"{len(checked) - len(failed)}/{len(checked)} targets hold"
    return text + (
        "; missed: " + ", ".join(f"{r.name} @{r.size}" for r in failed) if failed else ""
    )


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    info = machine()
    print(
        f"# {info['date']} nproc={info['nproc']} python={info['python']} doit={info['doit']} "
        f"uet-doit={info['uet_doit']} git={info['git']}+{info['uet_doit_dirty_files']} dirty "
        f"load={info['load']:.1f} mode={cfg.mode}"
    )
    start = time.perf_counter()
    suite = run_suite(cfg)
    path = write_json(suite)
    print(f"# {summary(suite.rows)}; {time.perf_counter() - start:.0f}s; results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
