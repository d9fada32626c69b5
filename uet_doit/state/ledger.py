"""Money and breakers in state.db: spend, reservations, cost resets and per-tool breakers.

Check-and-reserve and breaker decisions each run in one write transaction, so parallel
workers and concurrent runs never both slip through or both take a breaker's probe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from uet_doit.state.connection import Connections, stored
from uet_doit.state.records import AttemptOutcome, BreakerRecord, EventKind
from uet_doit.state.unknown_cost import UNKNOWN_SOURCES

T = TypeVar("T")

#: budget scope -> the attempts/reservations column it sums over
SCOPE_COLUMNS = {"step": "step_id", "workstream": "ws_id", "bundle": "bundle_id"}
#: spend report grouping -> column
GROUP_COLUMNS = {"step": "step_id", "workstream": "ws_id", "tool": "tool"}


@dataclass(frozen=True)
class ScopeSpend:
    """What is spent and reserved under one budget scope right now."""

    scope: str
    scope_id: str
    spent: float
    reserved: float


@dataclass(frozen=True)
class SpendRow:
    key: str | None
    attempts: int
    cost_usd: float
    tokens_in: int
    tokens_out: int
    sources: str
    unknown: int = 0  # attempts of unknown cost (not in cost_usd)
    charged_usd: float = 0.0  # what budgets count for them


@dataclass(frozen=True)
class AttemptCost:
    """What one finished attempt used and cost: what forecasts learn from."""

    tool: str
    model: str | None
    bundle_id: str
    step_id: str
    cost_usd: float | None
    tokens_in: int | None
    tokens_out: int | None


class BreakerCell:
    """One tool's breaker row, read and written inside one transaction."""

    def __init__(self, conn: Any, tool: str) -> None:
        self._conn = conn
        row = conn.execute("SELECT * FROM breakers WHERE tool=?", (tool,)).fetchone()
        self.record: BreakerRecord | None = (
            BreakerRecord(
                row["tool"],
                row["state"],
                row["failures"],
                row["last_failure"],
                row["opened_at"],
                row["probe_started"],
            )
            if row
            else None
        )

    def save(self, rec: BreakerRecord) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO breakers (tool, state, failures, last_failure, opened_at, "
            "probe_started) VALUES (?,?,?,?,?,?)",
            (rec.tool, rec.state, rec.failures, rec.last_failure, rec.opened_at, rec.probe_started),
        )


class Ledger:
    def __init__(self, db: Connections, path: Path) -> None:
        self._db = db
        self.path = path

    # -- spend ------------------------------------------------------------------------------
    def _since(self, conn: Any, bundle_id: str) -> float:
        row = conn.execute(
            "SELECT reset_at FROM cost_resets WHERE bundle_id=?", (bundle_id,)
        ).fetchone()
        return float(row[0]) if row else 0.0

    def _spent(self, conn: Any, bundle_id: str, scope: str, scope_id: str) -> float:
        column = SCOPE_COLUMNS[scope]
        row = conn.execute(
            # an unknown cost counts at what was charged for it (state/unknown_cost.py)
            f"SELECT coalesce(sum(coalesce(cost_usd, charged_usd)), 0) FROM attempts "
            f"WHERE bundle_id=? AND {column}=? "
            "AND started >= ?",
            (bundle_id, scope_id, self._since(conn, bundle_id)),
        ).fetchone()
        return float(row[0])

    def _reserved(
        self, conn: Any, bundle_id: str, scope: str, scope_id: str, session: str
    ) -> float:
        column = SCOPE_COLUMNS[scope]
        row = conn.execute(
            f"SELECT coalesce(sum(amount), 0) FROM reservations WHERE bundle_id=? AND {column}=? "
            "AND session=?",
            (bundle_id, scope_id, session),
        ).fetchone()
        return float(row[0])

    @stored
    def spent(self, bundle_id: str, scope: str, scope_id: str) -> float:
        """Spend under a budget scope since the bundle's last cost reset."""
        return self._spent(self._db.get(), bundle_id, scope, scope_id)

    @stored
    def charged(self, bundle_id: str, scope: str, scope_id: str) -> tuple[int, float]:
        """Attempts of unknown cost under a budget scope since the last reset, and what
        budgets count for them (part of `spent`)."""
        conn = self._db.get()
        column = SCOPE_COLUMNS[scope]
        row = conn.execute(
            "SELECT count(*), coalesce(sum(charged_usd), 0) FROM attempts WHERE cost_usd IS NULL "
            f"AND charged_usd IS NOT NULL AND bundle_id=? AND {column}=? AND started >= ?",
            (bundle_id, scope_id, self._since(conn, bundle_id)),
        ).fetchone()
        return int(row[0]), float(row[1])

    @stored
    def reserve_if(
        self,
        bundle_id: str,
        scopes: Sequence[tuple[str, str]],
        session: str,
        decide: Callable[[list[ScopeSpend]], tuple[bool, T]],
        *,
        run_id: str,
        ws_id: str,
        step_id: str,
        amount: float,
    ) -> tuple[int | None, T]:
        """Read spend and reservations under `scopes`, let `decide` judge them, and reserve
        `amount` when it admits the step: all in one transaction."""
        with self._db.transaction() as conn:
            seen = [
                ScopeSpend(
                    scope,
                    scope_id,
                    self._spent(conn, bundle_id, scope, scope_id),
                    self._reserved(conn, bundle_id, scope, scope_id, session),
                )
                for scope, scope_id in scopes
            ]
            admit, verdict = decide(seen)
            if not admit:
                return None, verdict
            cur = conn.execute(
                "INSERT INTO reservations (run_id, bundle_id, ws_id, step_id, amount, created, "
                "session) VALUES (?,?,?,?,?,?,?)",
                (run_id, bundle_id, ws_id, step_id, amount, time.time(), session),
            )
        return int(cur.lastrowid or 0), verdict

    @stored
    def release(self, reservation_id: int) -> None:
        self._db.get().execute("DELETE FROM reservations WHERE id=?", (reservation_id,))

    @stored
    def drop_reservations_except(self, session: str) -> None:
        """Reservations of runners that are gone hold no money."""
        self._db.get().execute("DELETE FROM reservations WHERE session IS NOT ?", (session,))

    @stored
    def reset_costs(self, bundle_id: str) -> None:
        self._db.get().execute(
            "INSERT OR REPLACE INTO cost_resets VALUES (?, ?)", (bundle_id, time.time())
        )

    @stored
    def recent_costs(self, tool: str, limit: int = 200) -> list[float]:
        """Costs of this tool's latest successful attempts (for estimates)."""
        rows = self._db.get().execute(
            "SELECT cost_usd FROM attempts WHERE tool=? AND outcome=? AND cost_usd IS NOT NULL "
            "ORDER BY id DESC LIMIT ?",
            (tool, AttemptOutcome.SUCCEEDED, limit),
        )
        return [float(r[0]) for r in rows]

    @stored
    def attempt_costs(
        self, before: float | None = None, tool: str | None = None, limit: int = 2000
    ) -> list[AttemptCost]:
        """Finished attempts (not refusals), newest first; `before` leaves out those started
        after it (a report's forecast as it stood when its run began)."""
        sql = (
            "SELECT tool, model, bundle_id, step_id, cost_usd, tokens_in, tokens_out "
            "FROM attempts WHERE ended IS NOT NULL AND tool IS NOT NULL AND outcome != ?"
        )
        args: list[Any] = [AttemptOutcome.REFUSED]
        if before is not None:
            sql += " AND started < ?"
            args.append(before)
        if tool is not None:
            sql += " AND tool = ?"
            args.append(tool)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return [AttemptCost(*row) for row in self._db.get().execute(sql, args)]

    @stored
    def models_used(self) -> list[tuple[str, str, int]]:
        """(tool, model, attempts) of every model recorded in this project, most used first."""
        rows = self._db.get().execute(
            "SELECT tool, model, count(*) FROM attempts WHERE model IS NOT NULL AND tool IS NOT "
            "NULL GROUP BY tool, model ORDER BY count(*) DESC, tool, model"
        )
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    @stored
    def warning_recorded(self, bundle_id: str, label: str) -> bool:
        """Whether a budget_warning for this budget was recorded since the last reset."""
        conn = self._db.get()
        row = conn.execute(
            "SELECT 1 FROM events WHERE kind=? AND ts >= ? AND "
            "json_extract(data, '$.budget') = ? AND json_extract(data, '$.bundle_id') = ?",
            (EventKind.BUDGET_WARNING, self._since(conn, bundle_id), label, bundle_id),
        ).fetchone()
        return row is not None

    @stored
    def spend_by(self, bundle_id: str, group: str, run_id: str | None = None) -> list[SpendRow]:
        column = GROUP_COLUMNS[group]
        sql = (
            f"SELECT {column} AS key, count(*) AS attempts, coalesce(sum(cost_usd), 0) AS cost, "
            "coalesce(sum(tokens_in), 0) AS tin, coalesce(sum(tokens_out), 0) AS tout, "
            "group_concat(DISTINCT cost_source) AS sources, "
            "coalesce(sum(cost_usd IS NULL AND cost_source IN "
            f"({', '.join(repr(s) for s in sorted(UNKNOWN_SOURCES))})), 0) AS unknown, "
            "coalesce(sum(CASE WHEN cost_usd IS NULL THEN charged_usd END), 0) AS charged "
            "FROM attempts WHERE bundle_id=?"
            " AND outcome != ?"
        )
        args: list[Any] = [bundle_id, AttemptOutcome.REFUSED]
        if run_id:
            sql += " AND run_id=?"
            args.append(run_id)
        sql += f" GROUP BY {column} ORDER BY min(id)"
        return [
            SpendRow(
                r["key"],
                r["attempts"],
                float(r["cost"]),
                r["tin"],
                r["tout"],
                r["sources"] or "",
                int(r["unknown"]),
                float(r["charged"]),
            )
            for r in self._db.get().execute(sql, args)
        ]

    # -- breakers ---------------------------------------------------------------------------
    @contextmanager
    def breaker(self, tool: str) -> Iterator[BreakerCell]:
        """A tool's breaker row for one read-decide-write step."""
        with self._db.transaction() as conn:
            yield BreakerCell(conn, tool)

    @stored
    def breakers(self) -> list[BreakerRecord]:
        rows = self._db.get().execute("SELECT * FROM breakers ORDER BY tool")
        return [
            BreakerRecord(
                r["tool"],
                r["state"],
                r["failures"],
                r["last_failure"],
                r["opened_at"],
                r["probe_started"],
            )
            for r in rows
        ]

    @stored
    def reset_breakers(self, tool: str | None = None) -> int:
        conn = self._db.get()
        if tool:
            return int(conn.execute("DELETE FROM breakers WHERE tool=?", (tool,)).rowcount)
        return int(conn.execute("DELETE FROM breakers").rowcount)
