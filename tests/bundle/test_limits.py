"""Hostile bundles (issue 13, item 14): each attack exits 3 from `uet validate` and `uet run`
with a located one-screen message, no traceback, in bounded time and memory."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from uet_doit.bundle.limits import MAX_ALIAS_NODES, MAX_DEPTH, check_values, load_yaml

from support import Project

STEP = {"step_id": "s", "command": "true"}


def one_step(**fields: Any) -> dict[str, Any]:
    return {"bundle_id": "b", "workstreams": [{"ws_id": "W", "steps": [{**STEP, **fields}]}]}


def as_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2)


#: a billion laughs: 9 levels of 9 aliases each, ~4e8 values once expanded
LEVELS = "abcdefghi"
BOMB = (
    "bundle_id: b\nx-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"x-{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in itertools.pairwise(LEVELS))
    + "metadata: {bomb: *i}\nworkstreams:\n"
    + "  - ws_id: W\n    steps: [{step_id: s, command: 'true'}]\n"
)

ATTACKS: dict[str, tuple[str, Callable[[], str], list[str]]] = {
    "alias_bomb": ("b.yaml", lambda: BOMB, ["YAML aliases expand the document by", "limit"]),
    "recursive_alias": (
        "b.yaml",
        lambda: "bundle_id: b\nmetadata: &m {self: *m}\nworkstreams: []\n",
        ["b.yaml: line 2: an alias refers to a node that contains it"],
    ),
    "json_10000_deep": (
        "b.json",
        lambda: '{"bundle_id": "b",\n"metadata": ' + "[" * 10_000 + "]" * 10_000 + "}",
        [f"b.json: line 2: the data is nested more than {MAX_DEPTH} levels deep"],
    ),
    "yaml_999_deep": (
        "b.yaml",
        lambda: "bundle_id: b\nmetadata: " + "[" * 999 + "]" * 999 + "\nworkstreams: []\n",
        [f"metadata[0][0][0][0][0][0][0] (line 2): nested more than {MAX_DEPTH} levels deep"],
    ),
    "json_5000_digits": (
        "b.json",
        lambda: '{"bundle_id": "b",\n"max_cost_usd": ' + "9" * 5000 + "}",
        ["b.json: line 2: a number has thousands of digits"],
    ),
    "yaml_5000_digits": (
        "b.yaml",
        lambda: "bundle_id: b\nmax_cost_usd: " + "9" * 5000 + "\n",
        ["b.yaml: line 2, column 15: a number with 5000 digits"],
    ),
    "json_infinity": (
        "b.json",
        lambda: as_json(one_step()).replace('"command"', '"timeout_seconds": Infinity,\n"command"'),
        ["Infinity is not a number a bundle can use"],
    ),
    "yaml_inf_delay": (
        "b.yaml",
        lambda: "bundle_id: b\nresilience: {initial_delay: .inf}\nworkstreams: []\n",
        ["resilience.initial_delay (line 2): not a finite number"],
    ),
    "timeout_1e308": (
        "b.json",
        lambda: as_json(one_step(timeout_seconds=1e308)),
        ["steps[0].timeout_seconds (line 10): Input should be less than or equal to 604800"],
    ),
    "yaml_date_in_string_field": (
        "b.yaml",
        lambda: (
            "bundle_id: b\nversion: 2024-01-01\nestimated_duration_hours: 2024-01-01\n"
            "workstreams: [{ws_id: W, steps: [{step_id: s, command: 'true'}]}]\n"
        ),
        [
            "estimated_duration_hours (line 3): Input should be a valid number, "
            'unable to parse string as a number (got "2024-01-01")'
        ],
    ),
    "nul_in_instruction": (
        "b.json",
        lambda: as_json(one_step(instruction="do\u0000this")),
        ["steps[0].instruction (line 10): contains \\x00 (NUL)"],
    ),
    "lone_surrogate": (
        "b.json",
        lambda: as_json(one_step(name="x\ud800")),
        ["steps[0].name (line 10): contains \\ud800 (half of a UTF-16 pair"],
    ),
    "ansi_in_name": (
        "b.json",
        lambda: as_json(one_step(name="\x1b[2J\x1b[31mall good")),
        ["steps[0].name (line 10): contains \\x1b (ESC (starts a terminal escape sequence))"],
    ),
    "c1_csi_in_description": (
        "b.yaml",
        lambda: 'bundle_id: b\ndescription: "\\x9b31m"\nworkstreams: []\n',
        ["description (line 2): contains \\x9b (a control character)"],
    ),
    "escape_in_key": (
        "b.json",
        lambda: as_json({**one_step(), "x-\x1b[2J": 1}),
        ["b.json: $: a key contains \\x1b"],
    ),
    "id_ending_in_newline": (
        "b.json",
        lambda: as_json(one_step(step_id="s\n")),
        ["steps[0].step_id (line 8): 's\\n' is not a valid id"],
    ),
    "id_of_200_characters": (
        "b.json",
        lambda: as_json(one_step(step_id="s" * 200)),
        ["steps[0].step_id (line 8): an id is at most 128 characters (this one has 200)"],
    ),
    "tab_in_name": (
        "b.json",
        lambda: as_json(one_step(name="a\tb")),
        ["steps[0].name (line 10): 'a\\tb' must be one line of text"],
    ),
    "yaml_duplicate_key": (
        "b.yaml",
        lambda: (
            "bundle_id: b\nworkstreams:\n  - ws_id: W\n    steps:\n"
            "      - {step_id: s, command: 'true'}\n    ws_id: V\n"
        ),
        ["b.yaml: line 6, column 5: key 'ws_id' is given twice in one mapping"],
    ),
    "yaml_binary_escape_in_free_text": (
        "b.yaml",
        lambda: "bundle_id: b\ndescription: !!binary G1sySg==\nworkstreams: []\n",
        ["description (line 2): a bytes value (from a YAML tag such as !!binary"],
    ),
    "yaml_integer_key": (
        "b.yaml",
        lambda: "bundle_id: b\nmetadata: {1: one}\nworkstreams: []\n",
        ["metadata (line 2): key 1 is not text"],
    ),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_is_a_located_bundle_error(project: Project, attack: str, command: str) -> None:
    name, make, fragments = ATTACKS[attack]
    project.write(name, make())
    result = project.uet(command, name)
    assert result.code == 3, result.err
    assert "Traceback" not in result.err + result.out
    for fragment in fragments:
        assert fragment in result.err, f"{fragment!r} missing from:\n{result.err}"
    assert len(result.err.splitlines()) <= 24  # one screen
    assert not (project.root / ".uet" / "state.db").exists()  # `uet run` started nothing


def test_no_control_character_reaches_the_terminal(project: Project) -> None:
    project.write("b.json", as_json(one_step(name="\x1b]0;owned\x07\x1b[2J")))
    result = project.uet("validate", "b.json")
    assert result.code == 3
    assert "\x1b" not in result.err and "\x07" not in result.err


def test_alias_bomb_is_refused_in_bounded_memory() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="aliases expand"):
            load_yaml(BOMB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024


def test_alias_bomb_cannot_hang_the_cli(project: Project) -> None:
    """In a child with 1 GB of address space: expanding the bomb would die or never end."""
    project.write("b.yaml", BOMB)
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30)); "
        "from uet_doit.cli.main import main; sys.exit(main(['validate', 'b.yaml']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "aliases expand" in done.stderr


def test_small_aliases_for_shared_defaults_are_fine(project: Project) -> None:
    steps = "".join(f"      - {{<<: *defaults, step_id: s{i}}}\n" for i in range(50))
    text = (
        "bundle_id: b\nx-defaults: &defaults {command: 'true', timeout_seconds: 60}\n"
        f"workstreams:\n  - ws_id: W\n    steps:\n{steps}"
    )
    project.write("b.yaml", text)
    result = project.uet("validate", "b.yaml")
    assert result.code == 0, result.err
    assert "50 steps" in result.out


def test_aliases_beyond_the_limit_are_counted_not_expanded() -> None:
    wide = "[" + ", ".join(["x"] * 1000) + "]"
    text = f"a: &a {wide}\nb: [{', '.join(['*a'] * (MAX_ALIAS_NODES // 1000 + 5))}]\n"
    with pytest.raises(ValueError, match="aliases expand"):
        load_yaml(text)


def test_dates_stay_text_and_keys_may_repeat_in_separate_mappings() -> None:
    data = load_yaml("version: 2024-01-01\na: {k: 1}\nb: {k: 2}\n")
    assert data == {"version": "2024-01-01", "a": {"k": 1}, "b": {"k": 2}}


def test_free_text_keeps_tabs_and_newlines() -> None:
    assert check_values({"instruction": "line 1\n\tline 2", "command": "a\nb"}) == []


def test_many_bad_values_fill_one_screen_not_the_scrollback(project: Project) -> None:
    steps = [{"step_id": f"s{i}", "command": "true", "name": f"\x1b[{i}m"} for i in range(500)]
    project.write(
        "b.json", as_json({"bundle_id": "b", "workstreams": [{"ws_id": "W", "steps": steps}]})
    )
    result = project.uet("validate", "b.json")
    assert result.code == 3
    assert "the first 20 of these problems are listed" in result.err
    assert len(result.err.splitlines()) <= 24
    assert result.err.count("hint:") == 1
