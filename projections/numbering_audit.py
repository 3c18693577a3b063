"""``ledger audit numbering``: the year's document numbers as the history holds them.

Read from the stored events, not from the documents read model (whose key is
the number: a duplicate could not show there): every event that issues a
numbered document, decoded, against the year's number sequence. The rule is
``ledger.numbering.audit_numbers``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

from ledger.application import Ledger
from ledger.contacts.account import ContactsAccount
from ledger.emails.account import Account
from ledger.numbering import (
    DocumentNumberSequence,
    NumberingFindings,
    audit_numbers,
    sequence_uuid,
)
from projections.runner import select_notifications

#: The events that give a document its yearly number (a proforma's is its own).
NUMBERING_EVENTS = (Account.DocumentIssued, ContactsAccount.ProformaPaid)
PAGE = 5000


def numbered(event: Any) -> tuple[str, str] | None:
    paid = isinstance(event, ContactsAccount.ProformaPaid)
    document = event.invoice if paid else event.document
    if document.kind == "proforma":
        return None
    return document.number, f"{document.account_id} ({event.originator_version})"


def issued_numbers(ledger: Ledger) -> Iterator[tuple[str, str]]:
    topics = [get_topic(cls) for cls in NUMBERING_EVENTS]
    after = 0
    while notifications := select_notifications(ledger, after, PAGE, topics):
        for notification in notifications:
            found = numbered(ledger.mapper.to_domain_event(notification))
            if found is not None:
                yield found
        after = notifications[-1].id


def audit_year(ledger: Ledger, year: int) -> NumberingFindings:
    try:
        sequence: DocumentNumberSequence = ledger.repository.get(sequence_uuid(year))
    except AggregateNotFoundError:  # no number was drawn that year
        allocated = 0
    else:
        allocated = sequence.last
    return audit_numbers(year, allocated, issued_numbers(ledger))
