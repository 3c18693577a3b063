"""``ledger audit unbilled``: nothing accepted and never billed, read from history.

Three questions, each answered from the stored events and the dedupe rows,
never from the read models:

1. Is every accepted email on exactly one document line? The email accounts'
   events in order, against the messages pointing at each one
   (``ledger.unbilled.EmailAccountBooks`` holds the rule).
2. Has every period past its close grace its document? A dry run of the close
   as of the time asked (``commands.closing.close_periods``, the same rule
   that issues documents, issuing nothing): what it would issue is missing.
3. Is the numbering gapless? Each year with a number, as ``ledger audit
   numbering`` reads it.

Contacts accounts are billed by contacts, not by email: their periods are
checked by the dry run and their numbers by the numbering, not their emails.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import OriginatorVersionError
from eventsourcing.utils import get_topic

from commands.closing import preview_account
from commands.models import ClosePeriods
from commands.numbers import NumberAllocator
from commands.store import LedgerRecorder
from ledger.application import Ledger
from ledger.emails.account import Account
from ledger.unbilled import EmailAccountBooks, Finding
from projections.numbering_audit import audit_year, issued_numbers
from projections.runner import select_notifications

#: What an email account's books are read from.
EMAIL_BOOK_EVENTS = (
    Account.Opened,
    Account.EmailsRecorded,
    Account.DocumentIssued,
    Account.MonthSkipped,
)
PAGE = 5000


@dataclass(frozen=True, slots=True)
class UnbilledReport:
    as_of: datetime
    grace: timedelta
    accounts: int
    #: Emails accepted by email accounts, on document lines, and not documented yet.
    emails: int
    on_lines: int
    waiting: int
    #: Late custom-SMTP emails: accepted, never charged, on no line (not a finding).
    late_smtp: int
    years: tuple[int, ...]
    findings: tuple[Finding, ...]

    @property
    def sound(self) -> bool:
        return not self.findings


def _events(ledger: Ledger, classes: tuple[type, ...]) -> Iterator[Any]:
    topics = [get_topic(cls) for cls in classes]
    after = 0
    while notifications := select_notifications(ledger, after, PAGE, topics):
        for notification in notifications:
            yield ledger.mapper.to_domain_event(notification)
        after = notifications[-1].id


def email_books(ledger: Ledger) -> list[EmailAccountBooks]:
    """Every email account's books, read event by event (question 1)."""
    recorder = ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    keys = recorder.message_keys_by_event()
    books: dict[UUID, EmailAccountBooks] = {}
    for event in _events(ledger, EMAIL_BOOK_EVENTS):
        kind = type(event)  # the event classes are typed loosely (ledger/emails/account.py)
        if kind is Account.Opened:
            books[event.originator_id] = EmailAccountBooks(event.account_id)
            continue
        account, version = books[event.originator_id], event.originator_version
        if kind is Account.EmailsRecorded:
            account.recorded(version, event.entries, keys.pop((event.originator_id, version), 0))
        elif kind is Account.DocumentIssued:
            account.issued(version, event.document)
        else:
            account.skipped(version, event.closed.month)
    for (originator_id, version), count in sorted(keys.items()):
        if originator_id in books:  # a contacts account's emails are not billed by email
            books[originator_id].unrecorded_keys(version, count)
    return list(books.values())


def undocumented(ledger: Ledger, as_of: datetime, grace: timedelta) -> list[Finding]:
    """Periods past their close grace without a document (question 2), and accounts
    whose history cannot be replayed (a stored event missing from their sequence)."""
    recorder = ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    cmd, allocator = ClosePeriods(as_of=as_of, grace=grace), NumberAllocator(ledger)
    findings: list[Finding] = []
    for account_id in recorder.account_ids():
        try:
            preview = preview_account(ledger, account_id, cmd, allocator)
        except OriginatorVersionError as exc:
            found, expected = exc.args
            findings.append(
                Finding(
                    account_id,
                    "history",
                    f"cannot be replayed: version {expected} is missing"
                    f" (the next stored event is version {found})",
                )
            )
            continue
        findings.extend(
            Finding(
                document.account_id,
                "undocumented",
                f"{document.period} ended more than {grace} before {as_of.isoformat()}"
                f" and has no {document.kind}",
            )
            for document in preview
        )
    return findings


def audit_unbilled(ledger: Ledger, as_of: datetime, grace: timedelta) -> UnbilledReport:
    books = email_books(ledger)
    findings = [finding for account in books for finding in account.findings]
    findings.extend(undocumented(ledger, as_of, grace))
    years = sorted({int(number[:4]) for number, _ in issued_numbers(ledger)})
    for year in years:
        numbering = audit_year(ledger, year)
        for number in numbering.gaps:
            findings.append(Finding("-", "numbering", f"{number} is on no document"))
        for number, owners in numbering.duplicates.items():
            findings.append(Finding("-", "numbering", f"{number} is on {', '.join(owners)}"))
        for number in numbering.unallocated:
            findings.append(Finding("-", "numbering", f"{number} was never allocated"))
    return UnbilledReport(
        as_of=as_of,
        grace=grace,
        accounts=len(books),
        emails=sum(b.emails for b in books),
        on_lines=sum(b.on_lines for b in books),
        waiting=sum(b.waiting for b in books),
        late_smtp=sum(b.late_smtp for b in books),
        years=tuple(years),
        findings=tuple(findings),
    )
