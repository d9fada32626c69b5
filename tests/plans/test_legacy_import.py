"""`uet import`: legacy flat workstream files combined into one bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from uet_doit.bundle.model import Bundle
from uet_doit.cli import plan_cmds
from uet_doit.errors import EXIT_USAGE
from uet_doit.plans import legacy_import

from support import FIXTURES, run_plugin

LEGACY = FIXTURES / "corpus" / "legacy"


def run(*argv: str) -> int:
    return run_plugin(plan_cmds, *argv)


def by_id(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {ws["ws_id"]: ws for ws in bundle["workstreams"]}


def test_ws_files_import_into_one_valid_bundle() -> None:
    files = sorted(str(p) for p in LEGACY.glob("ws-*.json"))
    bundle, problems, warnings = legacy_import.import_files(files)
    assert bundle is not None and problems == []
    Bundle.model_validate(bundle)
    wss = by_id(bundle)
    assert set(wss) == {
        "ws-01-hardcoded-path-index",
        "ws-10-openspec-integration",
        "ws-18-update-infrastructure-scripts",
        "ws-test-pipeline",
    }
    ws18 = wss["ws-18-update-infrastructure-scripts"]
    # only the imported workstreams stay as dependencies (duplicates folded)
    assert ws18["depends_on"] == ["ws-01-hardcoded-path-index", "ws-10-openspec-integration"]
    assert any("ws-02-section-mapping-config" in w and "dropped" in w for w in warnings)
    # circuit_breaker.max_attempts 5 -> 4 retries; the rest is kept in metadata
    assert ws18["resilience"] == {"max_retries": 4}
    assert ws18["metadata"]["circuit_breaker"] == {
        "max_error_repeats": 3,
        "oscillation_threshold": 2,
    }
    assert ws18["metadata"]["openspec_change"] == "WS-18"
    assert ws18["metadata"]["risk_level"] == "HIGH"
    assert ws18["doc_id"] == "DOC-CONFIG-WS-18-UPDATE-INFRASTRUCTURE-SCRIPTS-158"
    assert ws18["tool_profile_id"] == "aider"
    (step,) = ws18["steps"]
    assert step["context"]["instruction"].startswith("- Update all Python scripts")
    assert "python scripts/init_db.py" in step["validation"]["test_command"]


def test_comment_header_and_list_files_import() -> None:
    bundle, problems, _ = legacy_import.import_files([str(LEGACY / "example_multi.json")])
    assert problems == [] and bundle is not None
    wss = by_id(bundle)
    assert list(wss) == ["ws-core-lib", "ws-api-layer", "ws-cli"]
    assert wss["ws-cli"]["depends_on"] == ["ws-api-layer"]
    assert wss["ws-core-lib"]["metadata"]["ccpm_issue"] == 2001


def test_legacy_steps_and_phases_keep_their_steps() -> None:
    files = [str(LEGACY / "02_parallel_execution.json"), str(LEGACY / "04_multi_phase.json")]
    bundle, problems, _ = legacy_import.import_files(files, bundle_id="examples")
    assert problems == [] and bundle is not None
    Bundle.model_validate(bundle)
    parallel = by_id(bundle)["ws-example-02-parallel-execution"]
    outputs = {s["step_id"]: s["context"]["create_files"] for s in parallel["steps"]}
    assert outputs["step-02-string-utils"] == ["examples/string_utils.py"]
    assert parallel["timeout_seconds"] == 300
    assert all("_comment" not in json.dumps(ws) for ws in bundle["workstreams"])
    phased = by_id(bundle)["ws-example-04-multi-phase"]
    assert [s["metadata"]["phase"] for s in phased["steps"]] == [
        "phase-01-setup",
        "phase-02-processing",
        "phase-03-reporting",
    ]
    assert phased["steps"][1]["depends_on"] == ["step-01-create-processor"]


def test_clashing_step_ids_are_prefixed_and_dependencies_follow(tmp_path: Path) -> None:
    step = {"id": "s1", "tasks": ["a"]}
    for name in ("a", "b"):
        ws = {"id": f"ws-{name}", "steps": [step, {"id": "s2", "depends_on": ["s1"]}]}
        (tmp_path / f"{name}.json").write_text(json.dumps(ws), encoding="utf-8")
    bundle, _, _ = legacy_import.import_files([str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert bundle is not None
    second = by_id(bundle)["ws-b"]["steps"]
    assert [s["step_id"] for s in second] == ["ws-b.s1", "ws-b.s2"]
    assert second[1]["depends_on"] == ["ws-b.s1"]


def test_broken_files_are_named_with_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('/* DOC_ID: X */\n{\n  "id": "ws-x",\n  "tasks": [oops]\n}\n', encoding="utf-8")
    good = tmp_path / "ws-test-pipeline.json"
    shutil.copy(LEGACY / "ws-test-pipeline.json", good)
    out = tmp_path / "bundle.json"
    yaml_file = str(LEGACY / "openspec-test-001.yaml")
    assert run("import", str(bad), str(good), yaml_file, "-o", str(out)) == 0
    err = capsys.readouterr().err
    assert f"{bad}: line 4, column 13: not valid JSON" in err
    assert "openspec-test-001.yaml" in err.split("could not import:")[1]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [ws["ws_id"] for ws in data["workstreams"]] == ["ws-test-pipeline"]
    assert data["bundle_id"] == "ws-test-pipeline"
    assert data["workstreams"][0]["resilience"] == {"max_retries": 1}


def test_nothing_importable_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bundle.json").write_text(
        json.dumps({"bundle_id": "b", "workstreams": []}), encoding="utf-8"
    )
    (tmp_path / "other.json").write_text('{"name": "x"}', encoding="utf-8")
    code = run("import", str(tmp_path / "bundle.json"), str(tmp_path / "other.json"))
    assert code == EXIT_USAGE
    captured = capsys.readouterr()
    assert "already a bundle" in captured.err
    assert "not a legacy workstream" in captured.err
    assert "nothing imported" in captured.out


def test_all_fixture_files_together(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in LEGACY.iterdir())
    assert run("import", *files) == 0
    data = json.loads(capsys.readouterr().out)
    Bundle.model_validate(data)
    assert len(data["workstreams"]) == 10
    assert data["metadata"]["imported_from"] == [f for f in files if not f.endswith(".yaml")]
