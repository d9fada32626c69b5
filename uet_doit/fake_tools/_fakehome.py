"""What each fake CLI leaves outside its working directory, as the real one does
(docs/isolation.md "What a tool may write"; /work/shared/reference/ai-tools.md):

  aider   ~/.aider/analytics.json and installs.json (even with --no-analytics), ~/.aider/caches/
          (where its model price download would go)
  claude  ~/.claude.json (or $CLAUDE_CONFIG_DIR/.claude.json), saved the way Claude Code saves
          it: a lock folder and a temp copy beside it, renamed over it; when either is refused
          (a sandbox that grants the file only) it writes the file in place. Its config dir
          (~/.claude or $CLAUDE_CONFIG_DIR): projects/<cwd>/<session>.jsonl, todos/, backups/.
          One temp entry per call.
  codex   $CODEX_HOME (default ~/.codex): sessions/YYYY/MM/DD/rollout-*.jsonl, log/codex-tui.log.
          One temp entry per call.
  gemini  ~/.gemini: installation_id, tmp/<sha256 of cwd>/logs.json and chats/session-*.json.
          One temp entry per call.

A write refused here fails the fake (exit 1, the OS error on stderr), as the real CLI fails
when it cannot save its state.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("HOME") or Path.home())


def leave(tool: str, session: str, prompt: str) -> list[str]:
    """Write `tool`'s state for one call; the paths written (raises OSError when refused)."""
    writer = {"aider": _aider, "claude": _claude, "codex": _codex, "gemini": _gemini}.get(tool)
    return writer(session, prompt) if writer else []


def _write(path: Path, text: str, *, append: bool = False, keep: bool = False) -> str:
    """Write `text` (appended, or only when missing with `keep`); the path, as written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if keep and path.exists():
        return str(path)
    with path.open("a" if append else "w", encoding="utf-8") as fh:
        fh.write(text)
    return str(path)


def _temp_entry(tool: str) -> str:
    fd, name = tempfile.mkstemp(prefix=f"{tool}-", suffix=".tmp")
    os.close(fd)
    return name


def _aider(session: str, prompt: str) -> list[str]:
    folder = home() / ".aider"
    (folder / "caches").mkdir(parents=True, exist_ok=True)
    ident = {"uuid": uuid.uuid4().hex, "permanently_disable": False, "asked_opt_in": False}
    return [
        _write(folder / "analytics.json", json.dumps(ident), keep=True),
        _write(folder / "installs.json", json.dumps({os.path.realpath(__file__): True})),
        str(folder / "caches"),
    ]


def _claude(session: str, prompt: str) -> list[str]:
    named = os.environ.get("CLAUDE_CONFIG_DIR")
    config_dir = Path(named) if named else home() / ".claude"
    config = config_dir / ".claude.json" if named else home() / ".claude.json"
    slug = os.getcwd().replace(os.sep, "-").replace(".", "-")
    record = {"type": "user", "sessionId": session, "cwd": os.getcwd(), "message": prompt[:200]}
    written = [
        _write(config_dir / "projects" / slug / f"{session}.jsonl", json.dumps(record) + "\n", append=True),
        _write(config_dir / "todos" / f"{session}-agent-{session}.json", "[]"),
    ]
    old = config.read_text(encoding="utf-8") if config.exists() else ""
    try:
        data = json.loads(old or "{}")
    except ValueError:
        data = {}
    data.setdefault("userID", uuid.uuid4().hex)
    data["numStartups"] = int(data.get("numStartups", 0)) + 1
    projects = data.setdefault("projects", {})
    projects.setdefault(os.getcwd(), {"allowedTools": [], "hasTrustDialogAccepted": False})
    if old:
        stamp = int(time.time() * 1000)
        written.append(_write(config_dir / "backups" / f".claude.json.backup.{stamp}", old))
    written.append(_save_atomically(config, json.dumps(data, indent=2)))
    written.append(_temp_entry("claude"))
    return written


def _save_atomically(path: Path, text: str) -> str:
    """Claude Code's config save: lock folder, temp copy, rename; in place when refused."""
    lock = Path(f"{path}.lock")
    locked = False
    with contextlib.suppress(OSError):
        lock.mkdir()
        locked = True
    try:
        temp = Path(f"{path}.tmp.{os.getpid()}.{int(time.time() * 1000)}")
        try:
            temp.write_text(text, encoding="utf-8")
            os.replace(temp, path)
        except OSError:  # a read-only folder (EROFS/EACCES) or a bound file (EBUSY)
            with contextlib.suppress(OSError):
                temp.unlink()
            _write(path, text)  # its "non-atomic" fallback; an error here is fatal
    finally:
        if locked:
            lock.rmdir()
    return str(path)


def _codex(session: str, prompt: str) -> list[str]:
    folder = Path(os.environ.get("CODEX_HOME") or home() / ".codex")
    now = time.gmtime()
    day = folder / "sessions" / time.strftime("%Y/%m/%d", now)
    name = f"rollout-{time.strftime('%Y-%m-%dT%H-%M-%S', now)}-{session}.jsonl"
    meta = {"type": "session_meta", "payload": {"id": session, "cwd": os.getcwd()}}
    return [
        _write(day / name, json.dumps(meta) + "\n"),
        _write(folder / "log" / "codex-tui.log", f"session {session} started\n", append=True),
        _temp_entry("codex"),
    ]


def _gemini(session: str, prompt: str) -> list[str]:
    folder = home() / ".gemini"
    project = folder / "tmp" / hashlib.sha256(os.getcwd().encode()).hexdigest()
    logs = project / "logs.json"
    try:
        entries = json.loads(logs.read_text(encoding="utf-8")) if logs.exists() else []
    except ValueError:
        entries = []
    entries.append({"sessionId": session, "type": "user", "message": prompt[:200]})
    chat = {"sessionId": session, "projectHash": project.name, "messages": []}
    return [
        _write(folder / "installation_id", str(uuid.uuid4()), keep=True),
        _write(logs, json.dumps(entries, indent=2)),
        _write(project / "chats" / f"session-{time.strftime('%Y-%m-%dT%H-%M')}-{session[:8]}.json", json.dumps(chat)),
        _temp_entry("gemini"),
    ]
