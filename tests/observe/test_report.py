"""`uet report`: one self-contained, escaped, redacted HTML file in which every step appears."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from uet_doit.bundle.graph import build_graph
from uet_doit.bundle.model import Bundle
from uet_doit.observe.graph_export import critical_path
from uet_doit.state.store import RunStore

from support import Project, shell_step

SECRET = "sk-test-0123456789abcdef"
PASSWORD = "hunter2-long-password"
STEPS = ("alpha-write", "alpha-check", "beta-costly", "beta-flaky", "gamma-never")
RESULT = '{"cost_usd": 0.75, "tokens_in": 1200, "tokens_out": 300}'


def make_run(project: Project, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A run with outputs, costs, retries, a failure leaking secrets, gates and criteria."""
    monkeypatch.setenv("DEMO_API_KEY", SECRET)
    monkeypatch.setenv("DB_PASSWORD", PASSWORD)
    monkeypatch.setenv("SHORT_TOKEN", "abc")
    retry = {"max_retries": 1, "retry_on": ["unknown"], "initial_delay": 0, "jitter": 0}
    bundle = project.bundle(
        {
            "bundle_id": "rep",
            "bundle_name": "<script>alert('x')</script> & co",
            "max_cost_usd": 10,
            "workstreams": [
                {
                    "ws_id": "WS-ALPHA",
                    "steps": [
                        shell_step("alpha-write", "echo hi > out.txt", create_files=["out.txt"]),
                        shell_step("alpha-check", "cat out.txt", files=["out.txt"]),
                    ],
                },
                {
                    "ws_id": "WS-BETA",
                    "depends_on": ["WS-ALPHA"],
                    "max_cost_usd": 1,
                    "steps": [
                        shell_step("beta-costly", f"echo '{RESULT}' > \"$UET_RESULT_FILE\""),
                        shell_step(
                            "beta-flaky",
                            'echo "key=$DEMO_API_KEY pw=$DB_PASSWORD" >&2; echo "<b>out</b>"; '
                            "exit 3",
                            resilience=retry,
                            estimated_cost_usd=0,
                        ),
                    ],
                },
                {
                    "ws_id": "WS-GAMMA",
                    "depends_on": ["WS-BETA"],
                    "steps": [shell_step("gamma-never", "true")],
                },
            ],
        }
    )
    res = project.uet("run", str(bundle))
    assert res.code == 1, res.out + res.err
    store = RunStore(project.root)
    run_id = store.latest_run_id()
    assert run_id
    store.event(
        run_id,
        "gate_failed",
        None,
        ws_id="WS-ALPHA",
        gate_type="GATE_DOCS",
        command=f"check --token {SECRET}",
        message="2 broken <links>",
    )
    store.event(run_id, "gate_passed", None, ws_id="WS-ALPHA", gate_type="GATE_LINT", command="x")
    for state in ("to_confirm", "met"):
        store.event(run_id, "criterion", None, scope="WS-ALPHA", description="ADRs", state=state)
    store.event(run_id, "criterion", None, scope="bundle", description="Docs build", state="unmet")
    return run_id, bundle


def test_report_is_self_contained_escaped_and_redacted(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, _ = make_run(project, monkeypatch)
    res = project.uet("report", "-o", "r.html")
    assert res.code == 0, res.err
    page = project.read("r.html")
    for step in STEPS:
        assert f'id="step-{step}"' in page, step
    assert run_id in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "<link" not in page
    assert SECRET not in page and PASSWORD not in page
    assert "key=*** pw=***" in page  # the stderr excerpt is there, redacted
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in page
    assert "<script>alert" not in page
    assert "&lt;b&gt;out&lt;/b&gt;" in page  # stdout excerpt, escaped
    # costs against budgets, per workstream and per tool
    assert "$0.7500" in page and "$10.00" in page and "75%" in page
    # gates and criteria (the latest state of a criterion wins)
    assert "GATE_DOCS" in page and "2 broken &lt;links&gt;" in page
    assert re.search(r"ADRs</td><td><span class=\"badge s-met\">", page)
    assert "badge s-to_confirm" not in page
    assert "Docs build" in page and "s-unmet" in page
    # the timeline has one bar per attempt; the graph a node per step and workstream
    assert page.count('<g class="bar ') == 5  # 4 steps ran, one of them twice
    assert page.count('class="node') == len(STEPS) + 3
    assert 'class="edge implied' in page  # alpha-check reads what alpha-write creates


def test_report_without_the_bundle_file_still_lists_every_step(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, bundle = make_run(project, monkeypatch)
    bundle.unlink()
    res = project.uet("report", run_id)
    assert res.code == 0, res.err
    page = project.read(f"report-{run_id}.html")
    for step in STEPS:
        assert f'id="step-{step}"' in page
    assert "could not be read" in page


def test_report_without_runs_is_a_usage_error(project: Project) -> None:
    res = project.uet("report")
    assert res.code == 3
    assert "no runs recorded" in res.err
    assert not (project.root / ".uet").exists()


def test_critical_path_follows_the_longest_chain() -> None:
    bundle = Bundle.model_validate(
        {
            "bundle_id": "cp",
            "workstreams": [
                {
                    "ws_id": "W",
                    "steps": [
                        {"step_id": "a", "command": "true"},
                        {"step_id": "b", "command": "true", "depends_on": ["a"]},
                        {"step_id": "c", "command": "true", "depends_on": ["a"]},
                        {"step_id": "d", "command": "true", "depends_on": ["b", "c"]},
                    ],
                }
            ],
        }
    )
    graph = build_graph(bundle)
    assert critical_path(graph, {}) == []
    path = critical_path(graph, {"a": 1, "b": 1, "c": 5, "d": 1})
    assert [n for n in path if graph.kinds[n] == "step"] == ["a", "c", "d"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow  # a real browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    make_run(project, monkeypatch)
    assert project.uet("report", "-o", "r.html").code == 0
    url = (project.root / "r.html").as_uri()
    profile = tmp_path / "chromium-profile"
    base = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    shot = tmp_path / "report.png"
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1280,2000", url],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
    dom = subprocess.run(
        [*base, "--enable-logging=stderr", "--v=0", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "<main>" in dom.stdout, dom.stderr[-2000:]
    for step in STEPS:
        assert f'id="step-{step}"' in dom.stdout
    # the page logs nothing: any console line is a script error or a CSP refusal
    assert "Uncaught" not in dom.stderr
    assert "CONSOLE" not in dom.stderr
    assert "Refused to" not in dom.stderr
    assert SECRET not in dom.stdout
