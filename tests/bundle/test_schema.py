from __future__ import annotations

import json

import jsonschema
import yaml

from uet_doit.bundle.schema import schema_text

from support import REPO

ROOT = REPO


def test_committed_schema_is_in_sync_with_the_model() -> None:
    committed = (ROOT / "uet_doit" / "bundle" / "bundle.schema.json").read_text()
    assert committed == schema_text(), "run: uet schema > uet_doit/bundle/bundle.schema.json"


def test_schema_accepts_guide_and_real_spellings() -> None:
    schema = json.loads(schema_text())
    for path in [
        ROOT / "workstreams" / "demo.yaml",
        ROOT / "tests" / "fixtures" / "corpus" / "phase-k-plus-bundle.json",
        ROOT / "tests" / "fixtures" / "corpus" / "phase-4-week1-2-ast-bundle.json",
    ]:
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_schema_rejects_unknown_keys_but_allows_comments() -> None:
    schema = json.loads(schema_text())
    ok = {
        "bundle_id": "b",
        "_comment": "x",
        "x-team": 1,
        "workstreams": [{"ws_id": "W", "steps": [{"step_id": "s", "x-note": "y"}]}],
    }
    jsonschema.validate(ok, schema)
    bad = {"bundle_id": "b", "workstreams": [{"ws_id": "W", "stpes": []}]}
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError as exc:
        assert "stpes" in str(exc.message)
    else:
        raise AssertionError("unknown key accepted")
