"""The AI CLIs' own sessions: which one an attempt had, so a stalled attempt can resume it.

Claude Code is given its session id up front (`--session-id`, derived from the run, step and
attempt): its JSON comes only at the end, so a killed claude prints none. Codex streams
`thread.started {thread_id}` first; Gemini prints `session_id` in its JSON (stdout, or
stderr with an API error). What the tool reports wins over what was planned.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from uet_doit.tools.adapters.base import StepRequest

_NAMESPACE = uuid.UUID("4f6b1c9e-2d0a-4c59-9f59-8a7e0c6d3b21")
_REPORTED = re.compile(r'"(?:session_id|thread_id)"\s*:\s*"([0-9A-Za-z][0-9A-Za-z_.:-]{7,127})"')
#: how much of the start of a log is read for the id (codex reports it on its first line)
_HEAD_BYTES = 64 * 1024


def planned_session(request: StepRequest) -> str:
    """A UUID of this attempt's own, the same in `build` and `parse`."""
    return str(uuid.uuid5(_NAMESPACE, f"{request.run_id}/{request.step_id}/{request.attempt}"))


def reported_session(*logs: Path) -> str | None:
    """The first session (or codex thread) id the tool printed in its logs."""
    for log in logs:
        try:
            with log.open("rb") as fh:
                head = fh.read(_HEAD_BYTES).decode("utf-8", errors="replace")
        except OSError:
            continue
        found = _REPORTED.search(head)
        if found:
            return found.group(1)
    return None
