"""A cache entry: what one successful attempt made, and the key it was made under.

The entry is written last, after every blob it names, inside an envelope that holds the
sha256 of its manifest: a torn or tampered entry fails that check on read and counts as a
miss, never as a hit with half its files.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from uet_doit.cache.blobs import text_digest

ENTRY_FORMAT = 1
#: what a key and a blob name are: a sha256 in hex (never a path a store could be led out by)
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_INT, _NUM, _STR = (int,), (int, float), (str,)
#: the manifest's fields and the types a whole one has (None allowed where the field says)
_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "key": (_STR, False),
    "parts": ((dict,), False),
    "bundle_id": (_STR, False),
    "step_id": (_STR, False),
    "tool": (_STR, False),
    "files": ((list,), False),
    "tool_version": (_STR, True),
    "model": (_STR, True),
    "cost_usd": (_NUM, True),
    "tokens_in": (_INT, True),
    "tokens_out": (_INT, True),
    "cost_source": (_STR, False),
    "duration_s": (_NUM, False),
    "output_tail": (_STR, False),
    "run_id": (_STR, False),
    "created": (_NUM, False),
    "extra": ((dict,), False),
    "format": (_INT, False),
}
_FILE_FIELDS = {"path": _STR, "sha256": _STR, "size": _INT, "mode": _INT}


class DamagedEntry(Exception):
    """An entry or blob whose content does not match its hash (torn write, bit rot)."""


@dataclass(frozen=True)
class EntryFile:
    path: str  # relative to the project root
    sha256: str
    size: int
    mode: int = 0o644


@dataclass(frozen=True)
class Entry:
    key: str
    parts: dict[str, str]
    bundle_id: str
    step_id: str
    tool: str
    files: tuple[EntryFile, ...]
    tool_version: str | None = None
    model: str | None = None
    cost_usd: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_source: str = "none"
    duration_s: float = 0.0
    output_tail: str = ""
    run_id: str = ""
    created: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = ENTRY_FORMAT
        return data

    def to_bytes(self) -> bytes:
        manifest = self.manifest()
        return json.dumps(
            {"manifest": manifest, "sha256": text_digest(manifest)}, sort_keys=True
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes, key: str) -> Entry:
        """Parse and verify; DamagedEntry says what is wrong."""
        try:
            envelope = json.loads(data)
            manifest = envelope["manifest"]
            recorded = envelope["sha256"]
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            msg = f"entry {key[:12]} is not whole ({type(exc).__name__}: a torn or foreign write)"
            raise DamagedEntry(msg) from None
        if not isinstance(manifest, dict) or text_digest(manifest) != recorded:
            msg = f"entry {key[:12]} does not match its hash (damaged or half-written)"
            raise DamagedEntry(msg)
        if manifest.get("key") != key or manifest.get("format") != ENTRY_FORMAT:
            msg = f"entry {key[:12]} is stored under the wrong key or in another format"
            raise DamagedEntry(msg)
        problem = manifest_problem(manifest)
        if problem is not None:
            # its hash matches: not a torn write but one made to look whole (a poisoned store)
            raise DamagedEntry(f"entry {key[:12]} is not a cache entry ({problem})")
        manifest = dict(manifest)
        manifest.pop("format")
        files = tuple(EntryFile(**f) for f in manifest.pop("files"))
        return cls(files=files, **manifest)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def is_digest(name: object) -> bool:
    return isinstance(name, str) and HEX_DIGEST.fullmatch(name) is not None


def _wrong_type(value: object, kinds: tuple[type, ...], optional: bool) -> bool:
    if value is None:
        return not optional
    if isinstance(value, bool) or not isinstance(value, kinds):
        return True
    return isinstance(value, int | float) and (not math.isfinite(value) or value < 0)


def manifest_problem(manifest: dict[str, Any]) -> str | None:
    """Why a manifest is not one uet writes (a field missing, foreign or of the wrong type,
    a blob name that is not a hex digest), or None."""
    if set(manifest) != set(_FIELDS):
        odd = sorted(set(manifest) ^ set(_FIELDS))[0]
        return f"field {odd!r} is missing or foreign"
    for name, (kinds, optional) in _FIELDS.items():
        if _wrong_type(manifest[name], kinds, optional):
            return f"field {name!r} is not a {kinds[-1].__name__}"
    if not is_digest(manifest["key"]):
        return "its key is not a sha256"
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in manifest["parts"].items()):
        return "its key parts are not text"
    for item in manifest["files"]:
        if not isinstance(item, dict) or set(item) != set(_FILE_FIELDS):
            return "a file of it is not {path, sha256, size, mode}"
        if any(_wrong_type(item[k], kinds, False) for k, kinds in _FILE_FIELDS.items()):
            return "a file of it has a field of the wrong type"
        if not is_digest(item["sha256"]):
            return f"the blob name {item['sha256'][:40]!r} is not a sha256"
    return None
