"""The step cache's records in the run store: each step's last key parts (what `uet why`
compares a new key with) and what cached attempts saved."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from uet_doit.state.connection import Connections, stored
from uet_doit.state.records import AttemptOutcome, EventRecord, StepKeyRecord


class CacheBook:
    def __init__(self, db: Connections, path: Path) -> None:
        self._db = db
        self.path = path

    @stored
    def record_step_key(
        self, bundle_id: str, step_id: str, cache_key: str, parts: dict[str, str], run_id: str
    ) -> None:
        """A step's key parts at its success: what `uet why` compares the next key with."""
        self._db.get().execute(
            "INSERT OR REPLACE INTO step_keys (bundle_id, step_id, cache_key, parts, run_id,"
            " recorded) VALUES (?,?,?,?,?,?)",
            (bundle_id, step_id, cache_key, json.dumps(parts, sort_keys=True), run_id, time.time()),
        )

    @stored
    def step_key(self, bundle_id: str, step_id: str) -> StepKeyRecord | None:
        row = (
            self._db.get()
            .execute(
                "SELECT * FROM step_keys WHERE bundle_id=? AND step_id=?", (bundle_id, step_id)
            )
            .fetchone()
        )
        if row is None:
            return None
        return StepKeyRecord(
            row["bundle_id"],
            row["step_id"],
            row["cache_key"],
            EventRecord.decode(row["parts"]),
            row["run_id"],
            row["recorded"],
        )

    @stored
    def saved_by_cache(
        self, bundle_id: str | None = None, run_id: str | None = None
    ) -> tuple[int, float]:
        """Cached attempts and what the attempts that made their entries cost."""
        sql = "SELECT count(*), coalesce(sum(saved_usd), 0) FROM attempts WHERE outcome=?"
        args: list[Any] = [AttemptOutcome.CACHED]
        if bundle_id:
            sql += " AND bundle_id=?"
            args.append(bundle_id)
        if run_id:
            sql += " AND run_id=?"
            args.append(run_id)
        row = self._db.get().execute(sql, args).fetchone()
        return int(row[0]), float(row[1])
