"""An attempt answered from a cache: what an earlier success kept is put in the attempt's
working directory and judged as a tool's output would be (outputs, validation), with cost 0
and outcome `cached`.

The step cache (cache/extension.py) answers a step with its stored files, the reviewer
(run/review/reviewer.py) a review with a kept verdict (no files). The files an answer
replaces are set aside, not read (an output may be gigabytes): an answer that does not stand
is cancelled and they come back; `close()` drops them once it stood.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec, child_env, complete_attempt
from uet_doit.run.executors.base import Declined, OnStart
from uet_doit.state.records import AttemptOutcome
from uet_doit.tools.adapters.base import ToolResult

#: puts the kept files in a working directory; raises Declined when they cannot be had
Restore = Callable[[Path], None]


@dataclass(frozen=True)
class CachedAnswer:
    """What a cache kept of an earlier success, enough to answer the same attempt again."""

    message: str  # what the attempt's record says (which entry, what it saved)
    cache_key: str
    model: str | None = None
    saved_usd: float | None = None  # what the earlier attempt cost
    files: tuple[str, ...] = ()  # what `restore` writes, relative to the working directory
    restore: Restore | None = None
    log: str | None = None  # the attempt's stdout log (None: no log is written)


class CachedHandle:
    """One answered attempt; `cancel()` puts back what the answer replaced."""

    def __init__(self, spec: AttemptSpec, answer: CachedAnswer) -> None:
        self.spec = spec
        self.answer = answer
        self._kept: dict[Path, Path | None] = {}
        self._result = self._answer()

    def _answer(self) -> AttemptResult:
        spec, answer = self.spec, self.answer
        workdir = Path(spec.project_root)
        self._kept = _set_aside(workdir, answer.files)
        try:
            if answer.log is not None:
                log = Path(spec.stdout_path)
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(answer.log, encoding="utf-8")
            if answer.restore is not None:
                answer.restore(workdir)
            raw = ToolResult(success=True, exit_code=0, model=answer.model, cost_source="cache")
            judged = complete_attempt(spec, raw, child_env(spec), 0.0)
        except OSError as exc:
            self.cancel()
            raise Declined(f"outputs not restored ({exc}); the step runs") from exc
        except BaseException:
            self.cancel()
            raise
        if not judged.success:
            return judged
        return replace(
            judged,
            outcome=AttemptOutcome.CACHED,
            message=answer.message,
            cost_usd=0.0,
            tokens_in=0,
            tokens_out=0,
            cost_source="cache",
            saved_usd=answer.saved_usd,
            cache_key=answer.cache_key,
        )

    def done(self) -> bool:
        return True

    def result(self) -> AttemptResult:
        return self._result

    def cancel(self) -> None:
        """The answer is not used: the files it replaced come back."""
        kept, self._kept = self._kept, {}
        for path, aside in kept.items():
            with contextlib.suppress(OSError):
                if aside is None:
                    path.unlink(missing_ok=True)
                else:
                    os.replace(aside, path)

    def keep(self) -> None:
        """The answer stood: what it replaced is not needed any more."""
        kept, self._kept = self._kept, {}
        for aside in kept.values():
            if aside is not None:
                with contextlib.suppress(OSError):
                    aside.unlink()


class CachedExecutor:
    """Answers attempts with one cached answer; starts no tool."""

    name = "cache"
    starts_tools = False

    def __init__(self, answer: CachedAnswer) -> None:
        self.answer = answer
        self._handles: list[CachedHandle] = []

    def submit(self, spec: AttemptSpec, on_start: OnStart | None = None) -> CachedHandle:
        handle = CachedHandle(spec, self.answer)
        self._handles.append(handle)
        return handle

    def stop(self) -> None:
        """An answer from the cache starts no tool: nothing to stop."""

    def close(self) -> None:
        """Drop what answers that stood replaced (one that did not was cancelled)."""
        for handle in self._handles:
            handle.keep()
        self._handles.clear()


def _set_aside(workdir: Path, files: tuple[str, ...]) -> dict[Path, Path | None]:
    """What the restored files replace, renamed out of the way (never read), to put back if
    the answer turns out unusable; None: nothing was there."""
    kept: dict[Path, Path | None] = {}
    for rel in files:
        path = workdir / rel
        aside = path.with_name(f".{path.name}.uet-kept-{os.getpid()}-{threading.get_ident()}")
        try:
            os.replace(path, aside)
        except OSError:
            kept[path] = None
        else:
            kept[path] = aside
    return kept
