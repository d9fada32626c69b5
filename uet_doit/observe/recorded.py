"""The reporters `uet run` and doit's `--reporter uet|uet-json|uet-live` use: the printing
reporters of observe/, each wrapped by the run core's `recording()` (run/doit/decisions.py)
so that doit's own decisions about steps reach the run store."""

from __future__ import annotations

from uet_doit.observe.progress import LiveReporter
from uet_doit.observe.reporting import JsonLinesReporter, PlainReporter, ReporterBase
from uet_doit.run.doit.decisions import recording

RecordedPlainReporter = recording(PlainReporter)
RecordedJsonLinesReporter = recording(JsonLinesReporter)
RecordedLiveReporter = recording(LiveReporter)


def recorded(reporter: type[ReporterBase]) -> type[ReporterBase]:
    """The recording form of one of uet's printing reporters."""
    return {
        PlainReporter: RecordedPlainReporter,
        JsonLinesReporter: RecordedJsonLinesReporter,
        LiveReporter: RecordedLiveReporter,
    }.get(reporter) or recording(reporter)
