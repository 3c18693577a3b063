"""From a document line back to the events, and the emails in them, that make it up.

A month's platform emails have positions, in the order they were billed: the
events of the month in version order, each event's emails in arrival order.
The month's email lines take them in the order the document lists them
(included, then each tier: the graduated rule fills positions in that order),
so a line is a range of positions and each event gives it a range of its own
emails. Custom-SMTP emails are counted apart, late usage is the whole of the
late events it documents, a volume true-up restates every platform email.
Exact for a month under one plan; after a plan change within the month each
plan's lines are still ranges, taken in the document's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ledger.documents import Document, Line
from ledger.emails.usage import UsageEntry

Route = Literal["platform", "custom_smtp"]


@dataclass(frozen=True, slots=True)
class Share:
    """Emails ``start`` to ``stop`` (0-based, by route, in arrival order) of event ``version``."""

    version: int
    route: Route
    start: int
    stop: int

    @property
    def count(self) -> int:
        return self.stop - self.start


#: An event's entries for the month (or the late ones), by event version.
Recorded = Sequence[tuple[int, Sequence[UsageEntry]]]

ORDERED_LINES = ("included", "usage")


class NotAnEmailLine(Exception):
    """The line counts no email (a fee, a subscription): no emails to list."""


def _platform(entries: Sequence[UsageEntry]) -> int:
    return sum(e.platform for e in entries)


def line_shares(document: Document, line_no: int, month: Recorded, late: Recorded) -> list[Share]:
    """The events' emails that line ``line_no`` (1-based) of ``document`` counts."""
    line: Line = document.lines[line_no - 1]
    if line.kind == "custom_smtp":
        return [
            Share(v, "custom_smtp", 0, n)
            for v, entries in month
            if (n := sum(e.custom_smtp for e in entries))
        ]
    if line.kind == "late_usage":
        return [
            Share(v, "platform", 0, _platform(entries))
            for v, entries in late
            if any(str(e.month) in line.description for e in entries) and _platform(entries)
        ]
    if line.kind == "volume_true_up":
        start, stop = 0, sum(_platform(entries) for _, entries in month)
    elif line.kind in ORDERED_LINES:
        start = sum(
            earlier.quantity
            for earlier in document.lines[: line_no - 1]
            if earlier.kind in ORDERED_LINES
        )
        stop = start + line.quantity
    else:
        raise NotAnEmailLine(line.kind)
    shares, position = [], 0
    for version, entries in month:
        count = _platform(entries)
        low, high = max(start, position), min(stop, position + count)
        if low < high:
            shares.append(Share(version, "platform", low - position, high - position))
        position += count
    return shares
