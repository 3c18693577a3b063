"""``ledger audit line NUMBER LINE``: a document line expanded to its sources.

The document as its event issued it; the account's history up to that event
gives the month's emails (and the late ones the document took) event by
event; ``ledger.line_sources`` says which emails of each event the line
counts; the dedupe rows give those emails' upstream identity (CloudEvent
source and id, message id) and Kafka coordinates, in arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eventsourcing.utils import get_topic

from commands.store import LedgerRecorder
from ledger.application import Ledger
from ledger.documents import Document, Line
from ledger.emails.account import Account
from ledger.emails.usage import UsageEntry
from ledger.line_sources import Share, line_shares
from ledger.opening import account_uuid
from projections.runner import select_notifications

PAGE = 5000


@dataclass(frozen=True, slots=True)
class EventShare:
    share: Share
    effective_at: str
    #: The emails of the event's route, in arrival order, and the line's slice of them.
    messages: list[dict[str, Any]]
    ordered: bool


@dataclass(slots=True)
class LineSources:
    document: Document
    line_no: int
    line: Line
    #: The event that recorded the month's fee, for a fee line.
    fee_version: int | None = None
    events: list[EventShare] = field(default_factory=list)

    @property
    def counted(self) -> int:
        """The line's emails as the events count them."""
        return sum(e.share.count for e in self.events)

    @property
    def found(self) -> int:
        """The line's emails whose accepted message is found (its dedupe row)."""
        return sum(len(e.messages) for e in self.events)

    @property
    def adds_up(self) -> bool:
        return self.line.kind == "fee" or self.counted == self.found == self.line.quantity


class UnknownLine(Exception):
    pass


def account_of(ledger: Ledger, number: str) -> str:
    """Whose document ``number`` is, from the events that issue email accounts' documents
    (not the documents read model: an audit reads the history, however far the
    read models are)."""
    topic = get_topic(Account.DocumentIssued)
    after = 0
    while notifications := select_notifications(ledger, after, PAGE, [topic]):
        for notification in notifications:
            document: Document = ledger.mapper.to_domain_event(notification).document  # type: ignore[attr-defined]
            if document.number == number:
                return document.account_id
        after = notifications[-1].id
    raise UnknownLine(f"no email account's document is numbered {number!r}")


def _issued(ledger: Ledger, account_id: str, number: str) -> tuple[Any, list[Any]]:
    """The event that issued ``number`` and the account's events before it."""
    before: list[Any] = []
    for event in ledger.history(account_id):
        document = getattr(event, "document", None)
        if isinstance(document, Document) and document.number == number:
            return event, before
        before.append(event)
    raise UnknownLine(f"no document {number!r} was issued to {account_id!r}")


def line_sources(ledger: Ledger, account_id: str, number: str, line_no: int) -> LineSources:
    issued, before = _issued(ledger, account_id, number)
    document: Document = issued.document
    if not 1 <= line_no <= len(document.lines):
        raise UnknownLine(f"{number} has lines 1 to {len(document.lines)}, not {line_no}")
    found = LineSources(document, line_no, document.lines[line_no - 1])
    month: list[tuple[int, list[UsageEntry]]] = []
    late: list[tuple[int, list[UsageEntry]]] = []
    times: dict[int, str] = {}
    for event in before:
        kind = type(event)  # the event classes are typed loosely (ledger/emails/account.py)
        if kind is Account.DocumentIssued:
            late = []  # the late usage before it was on that document
        elif kind is Account.MonthOpened and event.usage.month == document.period:
            found.fee_version = event.originator_version
        elif kind is Account.EmailsRecorded:
            version = event.originator_version
            times[version] = event.effective_at.isoformat()
            on_time = [e for e in event.entries if not e.late and e.month == document.period]
            if on_time:
                month.append((version, on_time))
            if late_ones := [e for e in event.entries if e.late]:
                late.append((version, late_ones))
    if found.line.kind == "fee":
        return found
    recorder = ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    originator = account_uuid(account_id)
    for share in line_shares(document, line_no, month, late):
        messages = recorder.event_messages(originator, share.version, share.route == "custom_smtp")
        ordered = all(m["kafka_offset"] is not None for m in messages)
        found.events.append(
            EventShare(share, times[share.version], messages[share.start : share.stop], ordered)
        )
    return found
