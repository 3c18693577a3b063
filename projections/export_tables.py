"""What ``ledger export`` writes: one table per file, the columns an auditor reads.

Shared by the export (``projections/export.py``) and its independent check
(``ledger.entrypoints.cli.auditing``'s ``check-export``), so both read the same
column names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExportTable:
    name: str
    columns: tuple[str, ...]
    integers: frozenset[str]


def _table(name: str, columns: str, integers: str = "") -> ExportTable:
    return ExportTable(name, tuple(columns.split()), frozenset(integers.split()))


#: Every stored event, with both times and its link in the hash chain; ``state`` is the
#: stored state exactly (UTF-8 JSON), so the links can be recomputed from the file.
EVENTS = _table(
    "events",
    "notification_id originator_id originator_version account_id type topic"
    " effective_at recorded_at state previous_link link",
    "notification_id originator_version",
)
DOCUMENTS = _table(
    "documents",
    "number kind account_id period issued_on due_on currency subtotal tax_rate tax total"
    " proforma contacts notification_id",
    "contacts notification_id",
)
LINES = _table(
    "document_lines",
    "number line kind description quantity unit_price amount",
    "line quantity",
)
PAYMENTS = _table(
    "payments",
    "notification_id account_id payment_id outcome amount currency reference request_id"
    " reason retryable at",
    "notification_id",
)
ALLOCATIONS = _table(
    "allocations",
    "notification_id account_id payment_id reference amount currency from_credit at",
    "notification_id",
)
DEDUPE = _table(
    "dedupe_keys",
    "account_id originator_id originator_version source event_id message_id",
    "originator_version",
)
TABLES = (EVENTS, DOCUMENTS, LINES, PAYMENTS, ALLOCATIONS, DEDUPE)
