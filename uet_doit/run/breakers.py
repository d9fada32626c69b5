"""Circuit breakers as stored in state.db: shared by every worker process and later runs.

The state machine itself is pure (resilience.BreakerState); this reads and writes it, one
transaction per decision, so two workers never both take the half-open probe.
"""

from __future__ import annotations

from uet_doit.run.resilience import BreakerPolicy, BreakerState, BreakerStatus
from uet_doit.state.records import BreakerRecord
from uet_doit.state.store import RunStore


def _state(tool: str, rec: BreakerRecord | None) -> BreakerState:
    if rec is None:
        return BreakerState(tool)
    return BreakerState(
        tool,
        BreakerStatus(rec.state),
        rec.failures,
        rec.last_failure,
        rec.opened_at,
        rec.probe_started,
    )


def _record(st: BreakerState) -> BreakerRecord:
    return BreakerRecord(
        st.tool, st.state, st.failures, st.last_failure, st.opened_at, st.probe_started
    )


class BreakerBook:
    """Breaker state in state.db, read and written in one transaction per decision."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def admit(self, tool: str, policy: BreakerPolicy, now: float) -> tuple[bool, bool, str]:
        with self.store.ledger.breaker(tool) as cell:
            st = _state(tool, cell.record)
            before = st.state
            decision = st.admit(policy, now)
            if st.state != before or decision[1]:
                cell.save(_record(st))
        return decision

    def record(self, tool: str, policy: BreakerPolicy, success: bool, now: float) -> BreakerStatus:
        with self.store.ledger.breaker(tool) as cell:
            st = _state(tool, cell.record)
            if success and st.state == BreakerStatus.CLOSED and st.failures == 0:
                return BreakerStatus.CLOSED
            st.record(policy, success, now)
            cell.save(_record(st))
        return st.state

    def all(self) -> list[BreakerRecord]:
        return self.store.ledger.breakers()

    def reset(self, tool: str | None = None) -> int:
        return self.store.ledger.reset_breakers(tool)
