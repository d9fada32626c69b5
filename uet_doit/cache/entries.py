"""A cache entry: what one successful attempt made, and the key it was made under.

The entry is written last, after every blob it names, inside an envelope that holds the
sha256 of its manifest: a torn or tampered entry fails that check on read and counts as a
miss, never as a hit with half its files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

ENTRY_FORMAT = 1


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
        from uet_doit.cache.keys import text_digest

        manifest = self.manifest()
        return json.dumps(
            {"manifest": manifest, "sha256": text_digest(manifest)}, sort_keys=True
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes, key: str) -> Entry:
        """Parse and verify; DamagedEntry says what is wrong."""
        from uet_doit.cache.keys import text_digest

        try:
            envelope = json.loads(data)
            manifest = envelope["manifest"]
            recorded = envelope["sha256"]
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"entry {key[:12]} is not whole ({type(exc).__name__}: a torn or foreign write)"
            raise DamagedEntry(msg) from None
        if not isinstance(manifest, dict) or text_digest(manifest) != recorded:
            msg = f"entry {key[:12]} does not match its hash (damaged or half-written)"
            raise DamagedEntry(msg)
        if manifest.get("key") != key or manifest.get("format") != ENTRY_FORMAT:
            msg = f"entry {key[:12]} is stored under the wrong key or in another format"
            raise DamagedEntry(msg)
        manifest = dict(manifest)
        manifest.pop("format")
        files = tuple(EntryFile(**f) for f in manifest.pop("files"))
        return cls(files=files, **manifest)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)
