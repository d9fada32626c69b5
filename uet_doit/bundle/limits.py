"""Bounds on what a bundle file may contain, enforced while it is parsed, before the model.

A bundle can come from anywhere (a plan converter, a colleague, a model's output), and what is
in it ends up on a terminal, in argv and in SQLite. So a file that would take unbounded memory
or time (alias bombs, deep nesting, huge numbers), or whose text could drive a terminal
(escape sequences) or break a record (NUL, lone surrogates), is refused as a located problem
(exit 3), never a traceback.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml

#: the largest bundle file read (a 10k-step bundle is about 3 MB)
MAX_FILE_BYTES = 64 * 1024 * 1024
#: objects and lists nested deeper than this (real bundles nest 6 levels; metadata a few more)
MAX_DEPTH = 64
#: integers beyond a 64-bit signed range (no field needs more; 5,000-digit ones cost time)
MAX_INT = 2**63 - 1
#: nodes that YAML aliases may add on top of those written out (merge keys of defaults
#: into every step fit easily; a "billion laughs" document does not)
MAX_ALIAS_NODES = 200_000
#: problems reported from one walk (enough to see the pattern; the screen stays readable)
MAX_PROBLEMS = 20

#: C0 controls but tab and newline, DEL, C1 controls, and lone surrogates (not text at all)
_BAD_CHAR = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_CHAR_NAMES = {"\x00": "NUL", "\x1b": "ESC (starts a terminal escape sequence)", "\r": "CR"}

_YAML_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LimitError(ValueError):
    """Input beyond a bound; carries the 1-based line when the parser knows it."""

    def __init__(self, message: str, line: int | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.hint = hint


class YamlBoundError(yaml.constructor.ConstructorError):
    """A YAML document that parses but breaks a bundle rule (a key twice, a huge number)."""

    def __init__(self, problem: str, mark: Any, hint: str) -> None:
        super().__init__(None, None, problem, mark)
        self.hint = hint


class BundleYamlLoader(_YAML_BASE):  # type: ignore[misc]
    """YAML as a bundle needs it: a key given twice is an error (as in JSON), and dates stay
    text (`version: 2024-01-01` is a string field, not a datetime that breaks JSON output)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = (
            [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
            if isinstance(node, yaml.MappingNode)
            else []  # `!!map` on a scalar: the base class says what is wrong
        )
        if len(set(keys)) != len(keys):  # rare: only then find which one, and where
            seen: set[str] = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                if key_node.value in seen:
                    raise YamlBoundError(
                        f"key {key_node.value!r} is given twice in one mapping "
                        "(YAML would keep only the last)",
                        key_node.start_mark,
                        "remove or rename one of them",
                    )
                seen.add(key_node.value)
        result: dict[Any, Any] = super().construct_mapping(node, deep)
        return result

    def construct_yaml_timestamp_as_text(self, node: yaml.ScalarNode) -> str:
        return str(self.construct_scalar(node))

    def construct_bounded_int(self, node: yaml.ScalarNode) -> int:
        """int() of a 5,000-digit scalar takes time, then fails without a place: refuse it."""
        if len(str(node.value)) > _MAX_INT_CHARS:
            raise YamlBoundError(
                f"a number with {len(node.value)} digits", node.start_mark, _INT_HINT
            )
        value: int = super().construct_yaml_int(node)
        return value


_INT_HINT = f"numbers in a bundle are at most {MAX_INT}"
_MAX_INT_CHARS = len(f"-{MAX_INT:_}")  # the longest spelling of a number in range, with _
BundleYamlLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", BundleYamlLoader.construct_yaml_timestamp_as_text
)
BundleYamlLoader.add_constructor("tag:yaml.org,2002:int", BundleYamlLoader.construct_bounded_int)


def load_yaml(text: str) -> Any:
    """Parse YAML with the checks above; the node graph is checked for alias expansion,
    recursion and depth before anything is constructed from it."""
    loader = BundleYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if "&" in text:  # no anchor, no alias: the graph is a tree, nothing to expand
            check_node_graph(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def check_node_graph(root: yaml.Node) -> None:
    """Refuse aliases that would expand beyond MAX_ALIAS_NODES, that contain themselves, or
    that nest deeper than MAX_DEPTH once expanded. Iterative: depth costs no stack."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    entered: set[int] = set()
    distinct = 0
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, leaving = stack.pop()
        key = id(node)
        kids = _children(node)
        if leaving:
            size[key] = 1 + sum(size[id(k)] for k in kids)
            height[key] = 1 + max((height[id(k)] for k in kids), default=0)
            continue
        line = node.start_mark.line + 1
        if key in size:  # reached again through an alias
            if depth + height[key] - 1 > MAX_DEPTH:
                raise LimitError(f"aliases nest the data more than {MAX_DEPTH} levels deep", line)
            continue
        if key in entered:
            raise LimitError(
                "an alias refers to a node that contains it (a structure without end)",
                line,
                "write the data out instead of referring to its own anchor",
            )
        if depth > MAX_DEPTH:
            raise LimitError(f"the data is nested more than {MAX_DEPTH} levels deep", line)
        entered.add(key)
        distinct += 1
        stack.append((node, depth, True))
        stack.extend((k, depth + 1, False) for k in kids)
    added = size[id(root)] - distinct
    if added > MAX_ALIAS_NODES:
        raise LimitError(
            f"YAML aliases expand the document by {added:,} values (limit {MAX_ALIAS_NODES:,})",
            None,
            "an alias copies what its anchor names: refer to small defaults only",
        )


def load_json(text: str, pairs_hook: Any) -> Any:
    """json.loads without NaN/Infinity, with the nesting and digit limits as LimitError."""
    try:
        return json.loads(text, object_pairs_hook=pairs_hook, parse_constant=_no_constant)
    except RecursionError:
        message = f"the data is nested more than {MAX_DEPTH} levels deep"
        raise LimitError(message, _deep_line(text), _DEPTH_HINT) from None
    except _NonFinite as exc:
        found = re.search(rf"[\[:,]\s*{exc}", text)
        line = text.count("\n", 0, found.start()) + 1 if found else None
        raise LimitError(f"{exc} is not a number a bundle can use", line, _FINITE_HINT) from None
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError) or "digits" not in str(exc):
            raise
        found = re.search(r"\d{4000,}", text)
        line = text.count("\n", 0, found.start()) + 1 if found else None
        raise LimitError("a number has thousands of digits", line, _INT_HINT) from None


class _NonFinite(ValueError):
    """NaN or Infinity in JSON (Python's parser accepts them; JSON does not)."""


def _no_constant(name: str) -> Any:
    raise _NonFinite(name)


def _deep_line(text: str) -> int | None:
    """Line where brackets first nest deeper than MAX_DEPTH (strings skipped)."""
    depth, in_string, escaped, line = 0, False, False, 1
    for ch in text:
        if ch == "\n":
            line += 1
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif ch in "]}":
            depth -= 1
    return None


def describe_char(ch: str) -> str:
    """A control character as a person can read it: `\\x1b (ESC ...)`."""
    code = ord(ch)
    shown = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"{shown} (half of a UTF-16 pair without its other half: not text)"
    name = _CHAR_NAMES.get(ch)
    return f"{shown} ({name})" if name else f"{shown} (a control character)"


_CHAR_HINT = (
    "bundle text may hold tab and newline, but no other control character: "
    "what a bundle says ends up on a terminal, in argv and in the run records"
)
_DEPTH_HINT = "uet reads bundles with bounded memory and time: flatten the data"
_FINITE_HINT = "give a finite number (timeouts, delays and costs have upper bounds too)"


Loc = tuple[int | str, ...]
_SHOWN_LEVELS = 8


def check_values(data: Any) -> list[tuple[Loc, str, str]]:
    """(location, message, hint) for every value beyond a bound, walked without recursion.

    Runs on every load of every bundle, so scalars are checked in the loop over their
    container and a location is composed only for a problem (10k steps: about 20 ms)."""
    problems: list[tuple[Loc, str, str]] = []
    bad_char = _BAD_CHAR.search
    # (container, its path as a linked list (parent, key) for composing on error, depth)
    stack: list[tuple[Any, Any, int]] = [(data, None, 0)] if type(data) in (dict, list) else []

    def add(link: Any, key: int | str | None, message: str, hint: str) -> None:
        parts: list[int | str] = [] if key is None else [key]
        while link is not None:
            link, part = link
            parts.append(part)
        # the first levels say where; sixty-four `[0]` would not say it better
        problems.append((tuple(reversed(parts))[:_SHOWN_LEVELS], message, hint))

    while stack and len(problems) < MAX_PROBLEMS:
        container, link, depth = stack.pop()
        if type(container) is dict:
            for key in container:
                if type(key) is not str:
                    add(link, None, f"key {key!r} is not text", "quote it: keys are names")
                elif bad_char(key):
                    found = bad_char(key)
                    what = describe_char(found.group()) if found else ""
                    add(link, None, f"a key contains {what}", _CHAR_HINT)
            items: Any = container.items()
        else:
            items = enumerate(container)
        for key, value in items:
            kind = type(value)
            if kind is str:
                found = bad_char(value)
                if found:
                    add(link, key, f"contains {describe_char(found.group())}", _CHAR_HINT)
            elif kind is dict or kind is list:
                if depth + 1 >= MAX_DEPTH:
                    add(link, key, f"nested more than {MAX_DEPTH} levels deep", _DEPTH_HINT)
                else:
                    stack.append((value, (link, key), depth + 1))
            elif kind is int:
                if not -MAX_INT <= value <= MAX_INT:
                    add(link, key, "the number is out of range", _INT_HINT)
            elif kind is float:
                if not math.isfinite(value):
                    add(link, key, "not a finite number (inf or nan)", _FINITE_HINT)
            elif kind is not bool and value is not None:  # YAML's !!binary, !!set, ...
                what = f"a {kind.__name__} value (from a YAML tag such as !!binary or !!set)"
                add(link, key, what, "bundles hold text, numbers, lists and mappings only")
    return problems[:MAX_PROBLEMS]
