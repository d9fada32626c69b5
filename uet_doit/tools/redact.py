"""Keep API keys out of logs, messages and reports.

Tools echo their environment and request headers in error output; everything uet stores or
prints from a tool goes through a Redactor built from the child's environment. Compiled
regexes (long secret values, short ones as whole words, then common key shapes) each make one
pass over the text. Log files are redacted as a stream, never read whole: a tool can write
gigabytes, and a step must not need that much memory to hide one key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar, cast

MASK = "***"
_MASK_BYTES = MASK.encode()
#: values this long are masked wherever they occur, even inside a longer word
MIN_SECRET_LENGTH = 6
#: values of 3 to 5 characters are masked only as a whole word (`ab12` but not `xab12y`):
#: masking them inside words would garble ordinary text and show where the secret occurs
MIN_MASKABLE_LENGTH = 3
#: switches, not secrets (`GITHUB_TOKEN=none`): never masked and never warned about
NOT_SECRETS = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null", "nil", "0"})
#: environment variable names whose values are secrets
SECRET_NAME = re.compile(r"(^|_)API_KEY$|(^|_)TOKEN$|SECRET|PASSWORD", re.I)
#: the shapes of common keys, masked even when they are not in the environment
KEY_SHAPES = (
    r"sk-[A-Za-z0-9_\-]{16,}",  # OpenAI (sk-proj-...), Anthropic (sk-ant-...)
    r"AIza[0-9A-Za-z_\-]{35}",  # Google / Gemini
    r"gh[pousr]_[A-Za-z0-9]{36,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{22,}",
    r"xox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack
    r"AKIA[0-9A-Z]{16}\b",  # AWS access key id
)
_SHAPES_SOURCE = r"\b(?:" + "|".join(KEY_SHAPES) + ")"
_SHAPES = re.compile(_SHAPES_SOURCE, re.ASCII)  # word boundaries as in the bytes pattern
_SHAPES_BYTES = re.compile(_SHAPES_SOURCE.encode())
_WORD_BEFORE, _WORD_AFTER = "(?<![A-Za-z0-9])", "(?![A-Za-z0-9])"

#: attempt and gate logs are cut to this size (the bundle's `max_log_bytes` overrides it)
DEFAULT_MAX_LOG_BYTES = 50 * 1024 * 1024
#: bytes read at a time when a log is redacted; memory stays near a few of these
CHUNK_BYTES = 1024 * 1024
#: a key shape still growing at the end of this much pending text is masked as it stands
_MAX_PENDING = 16 * CHUNK_BYTES
#: a cut is moved back (head) or forward (tail) to a line end found within this distance
_LINE_SEARCH = 4096
#: room left for the marker line when a log is cut
_MARKER_ROOM = 256

T = TypeVar("T")


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Values of *_API_KEY, *_TOKEN, *SECRET*, *PASSWORD* variables."""
    return [value for name, value in env.items() if SECRET_NAME.search(name)]


def unmaskable_secrets(env: Mapping[str, str]) -> list[str]:
    """Names of secret variables whose value is too short to mask without garbling output."""
    return sorted(
        name
        for name, value in env.items()
        if SECRET_NAME.search(name)
        and 0 < len(value) < MIN_MASKABLE_LENGTH
        and value.lower() not in NOT_SECRETS
    )


def short_secret_warning(env: Mapping[str, str]) -> str | None:
    """The one warning a run prints when some secret cannot be masked (names, never values)."""
    names = unmaskable_secrets(env)
    if not names:
        return None
    return (
        f"warning: {', '.join(names)} {'is' if len(names) == 1 else 'are'} shorter than "
        f"{MIN_MASKABLE_LENGTH} characters: uet cannot mask such a value in logs and output "
        "without masking ordinary text; a tool that prints it shows it as is. Use a longer "
        "secret, or unset the variable if it is not one."
    )


def redact_result(value: T, env: Mapping[str, str]) -> T:
    """What a tool or callable reported (a result-file dict, a return value), every string
    in it redacted with the secrets of `env`: call it before storing model, notes, etc."""
    return Redactor.cached_for(env).redact_data(value)


class Redactor:
    """Replaces known secret values and key-shaped strings with `***`."""

    def __init__(self, secrets: Iterable[str] = (), *, shapes: bool = True) -> None:
        secrets = list(secrets)
        values = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        short = {
            s
            for s in secrets
            if MIN_MASKABLE_LENGTH <= len(s) < MIN_SECRET_LENGTH and s.lower() not in NOT_SECRETS
        }
        # longest first, so a secret containing another is masked whole; the long values
        # stay a pure alternation of literals, which keeps re's fast literal scan
        sources: list[tuple[str, bytes]] = []
        for group, before, after in ((values, "", ""), (short, _WORD_BEFORE, _WORD_AFTER)):
            ordered = sorted(group, key=len, reverse=True)
            if ordered:
                text = "|".join(re.escape(v) for v in ordered)
                raw = b"|".join(re.escape(_encode(v)) for v in ordered)
                if before:
                    text, raw = (
                        f"{before}(?:{text}){after}",
                        b"%s(?:%s)%s"
                        % (
                            _ascii(before),
                            raw,
                            _ascii(after),
                        ),
                    )
                sources.append((text, raw))
        self._patterns = [re.compile(text) for text, _ in sources]
        self._byte_patterns = [re.compile(raw) for _, raw in sources]
        # a pass holds back this many bytes, so a secret cut by a chunk boundary still matches
        self._overlaps = [max(map(len, map(_encode, values | short)), default=0) + 64] * len(
            sources
        )
        if shapes:
            self._patterns.append(_SHAPES)
            self._byte_patterns.append(_SHAPES_BYTES)
            self._overlaps.append(128)  # longer than the minimal match of every key shape
        self.secret_count = len(values) + len(short)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Redactor:
        """Secrets are the values of *_API_KEY, *_TOKEN, *SECRET*, *PASSWORD* variables."""
        return cls(secret_values(os.environ if env is None else env))

    @classmethod
    def cached_for(cls, env: Mapping[str, str]) -> Redactor:
        """from_env, compiled once per set of secret values (a step asks for every attempt)."""
        return _compiled(tuple(sorted(secret_values(env))))

    def redact(self, text: str) -> str:
        for pattern in self._patterns:
            text = pattern.sub(MASK, text)
        return text

    def redact_bytes(self, data: bytes) -> bytes:
        for pattern in self._byte_patterns:
            data = pattern.sub(_MASK_BYTES, data)
        return data

    def redact_data(self, value: T) -> T:
        """Every string in a reported value (dict keys and values, lists, tuples, sets,
        dataclass fields, nested at any depth) redacted; numbers and None kept as they are."""
        return cast(T, self._redact_any(value))

    def _redact_any(self, value: object) -> object:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, bytes):
            return self.redact_bytes(value)
        if isinstance(value, Mapping):
            return {self._redact_any(k): self._redact_any(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact_any(v) for v in value]
        if isinstance(value, tuple):
            items = [self._redact_any(v) for v in value]
            if hasattr(value, "_fields"):  # a named tuple
                return cast(Any, type(value))(*items)
            return tuple(items)
        if isinstance(value, set | frozenset):
            return type(value)(self._redact_any(v) for v in value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {
                f.name: self._redact_any(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if f.init
            }
            return dataclasses.replace(value, **changes)
        return value

    def redact_file(self, path: Path, *, max_bytes: int | None = None) -> bool:
        """Redact a log in place, streaming it, and cut it to `max_bytes` (its head and tail
        kept, the cut marked) in the same pass. The new text is written to a temp file that
        replaces the log, so a crash leaves the old log or the new one, never half of each.
        A log with nothing to mask and under the cap is only read. True when it changed."""
        try:
            src = path.open("rb")
        except OSError:
            return False
        with src:
            size = os.fstat(src.fileno()).st_size
            capped = max_bytes is not None and size > max_bytes
            if not size or (not capped and not self._byte_patterns):
                return False
            out = _Rewrite(path, src)
            try:
                if capped:
                    assert max_bytes is not None
                    head_end, tail_start = self._cut_points(src, size, max_bytes)
                    out.write(self._stream(src, 0, head_end))
                    src.seek(max(0, head_end - 1))
                    newline = b"" if not head_end or src.read(1) == b"\n" else b"\n"
                    out.write([newline + _marker(size, head_end, tail_start, max_bytes)])
                    out.write(self._stream(src, tail_start, size))
                else:
                    out.write(self._stream(src, 0, size), lazy=True)
                return out.commit()
            finally:
                out.discard()

    def _stream(self, src: IO[bytes], start: int, end: int) -> _Stream:
        return _Stream(
            src,
            start,
            end,
            [_Pass(p, n) for p, n in zip(self._byte_patterns, self._overlaps, strict=True)],
        )

    def _cut_points(self, src: IO[bytes], size: int, max_bytes: int) -> tuple[int, int]:
        """Where the kept head ends and the kept tail starts: at line ends when one is near,
        and never inside a secret (half a key left in the head would show half the key)."""
        keep = max(0, (max_bytes - _MARKER_ROOM) // 2)
        src.seek(max(0, keep - _LINE_SEARCH))
        before = src.read(min(keep, _LINE_SEARCH))
        newline = before.rfind(b"\n")
        head_end = keep - len(before) + newline + 1 if newline >= 0 else keep
        src.seek(size - keep)
        newline = src.read(_LINE_SEARCH).find(b"\n")
        tail_start = size - keep + newline + 1 if newline >= 0 else size - keep
        head_end = self._outside_matches(src, head_end, backwards=True)
        tail_start = self._outside_matches(src, max(tail_start, head_end), backwards=False)
        return head_end, tail_start

    def _outside_matches(self, src: IO[bytes], cut: int, *, backwards: bool) -> int:
        """Move `cut` to the start (backwards) or end of any masked text that spans it."""
        for _ in range(64):  # each move lands on a match edge; a few are ever needed
            moved = cut
            for pattern, overlap in zip(self._byte_patterns, self._overlaps, strict=True):
                low = max(0, cut - overlap)
                src.seek(low)
                window = src.read(cut + overlap - low)
                for m in pattern.finditer(window):
                    if low + m.start() < cut < low + m.end():
                        moved = low + (m.start() if backwards else m.end())
            if moved == cut:
                return cut
            cut = moved
        return cut


class _Pass:
    """One regex over a stream: holds back `overlap` bytes (and a match still touching the
    end) until more text shows where it ends, and keeps a little of the text already passed
    on, so look-behinds and word boundaries see the same neighbours as in the whole file."""

    _CONTEXT = 8

    def __init__(self, pattern: re.Pattern[bytes], overlap: int) -> None:
        self.pattern, self.overlap = pattern, overlap
        self.buf = b""
        self.start = 0  # buf[:start] was passed on already: context only
        self.masked = False

    def feed(self, data: bytes, *, final: bool) -> bytes:
        buf = self.buf + data if self.buf else data
        limit = len(buf) if final else max(self.start, len(buf) - self.overlap)
        out: list[bytes] = []
        pos = self.start
        for m in self.pattern.finditer(buf, self.start):
            if m.start() >= limit:
                break
            if not final and m.end() >= len(buf) and len(buf) - self.start < _MAX_PENDING:
                limit = m.start()  # it may go on in the next chunk
                break
            out += (buf[pos : m.start()], _MASK_BYTES)
            pos = m.end()
            self.masked = True
        upto = max(pos, limit)
        out.append(buf[pos:upto])
        keep = max(0, upto - self._CONTEXT)
        self.buf, self.start = buf[keep:], upto - keep
        return b"".join(out)


class _Stream:
    """The redacted bytes of src[start:end], a chunk at a time, through every pass."""

    def __init__(self, src: IO[bytes], start: int, end: int, passes: list[_Pass]) -> None:
        self.src, self.start, self.end, self.passes = src, start, end, passes

    @property
    def masked(self) -> bool:
        return any(stage.masked for stage in self.passes)

    def __iter__(self) -> Iterator[bytes]:
        self.src.seek(self.start)
        left = self.end - self.start
        while True:
            data = self.src.read(min(CHUNK_BYTES, left)) if left > 0 else b""
            left -= len(data)
            final = left <= 0 or not data  # not data: the file shrank under us
            for stage in self.passes:
                data = stage.feed(data, final=final)
            yield data
            if final:
                return


class _Rewrite:
    """The new content of a log, in a temp file beside it that replaces it on commit. Until
    something is masked the output equals the input, so nothing is written: a clean log costs
    one read, and the temp file starts with a copy of the prefix the moment it is needed."""

    def __init__(self, path: Path, src: IO[bytes]) -> None:
        self.path, self.src = path, src
        self.same = 0  # bytes of output so far that are the input's own prefix, not written
        self.tmp: IO[bytes] | None = None
        self.tmp_name = ""

    def _open(self) -> IO[bytes]:
        fd, self.tmp_name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        self.tmp = os.fdopen(fd, "wb")
        with contextlib.suppress(OSError):
            os.chmod(fd, os.stat(self.src.fileno()).st_mode & 0o7777)
        for offset in range(0, self.same, CHUNK_BYTES):
            size = min(CHUNK_BYTES, self.same - offset)
            self.tmp.write(os.pread(self.src.fileno(), size, offset))
        return self.tmp

    def write(self, pieces: Iterable[bytes], *, lazy: bool = False) -> None:
        """Write `pieces`; with `lazy`, skip them while their stream has masked nothing."""
        for piece in pieces:
            if lazy and self.tmp is None and not cast(_Stream, pieces).masked:
                self.same += len(piece)
            else:
                (self.tmp or self._open()).write(piece)

    def commit(self) -> bool:
        if self.tmp is None:
            return False
        self.tmp.close()
        self.tmp = None
        os.replace(self.tmp_name, self.path)
        return True

    def discard(self) -> None:
        if self.tmp is not None:
            self.tmp.close()
            self.tmp = None
            with contextlib.suppress(OSError):
                os.unlink(self.tmp_name)


def _marker(size: int, head_end: int, tail_start: int, max_bytes: int) -> bytes:
    return (
        f"[uet: {_human(tail_start - head_end)} cut from the middle of this log "
        f"({_human(size)} was over max_log_bytes, {_human(max_bytes)}); the first "
        f"{_human(head_end)} and the last {_human(size - tail_start)} are kept]\n"
    ).encode()


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def _encode(value: str) -> bytes:
    return value.encode("utf-8", errors="surrogateescape")


def _ascii(text: str) -> bytes:
    return text.encode("ascii")


def cap_log(path: Path, max_bytes: int = DEFAULT_MAX_LOG_BYTES) -> bool:
    """Cut a log over `max_bytes` to its head and tail (key shapes masked on the way)."""
    return Redactor().redact_file(path, max_bytes=max_bytes)


@functools.lru_cache(maxsize=32)
def _compiled(values: tuple[str, ...]) -> Redactor:
    """A pure cache, not run state: a Redactor is immutable and depends only on the secret
    values, so runs in one process share it; bounded, so secrets rotated over a long-lived
    process do not pile up in memory."""
    return Redactor(values)
