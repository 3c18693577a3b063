"""``ledger export``: the books taken away, from one snapshot of the history.

Everything is read in one repeatable-read transaction, so the files, their row
counts and the chain head in the manifest describe the same moment, whatever
the writers do meanwhile. The tables (``projections/export_tables.py``) are
derived from the stored events, not from the read models: documents with their
lines as issued, payments and allocations as recorded, each row naming the
event it came from; the events themselves go out with both times and their
links in the hash chain, and the dedupe keys with the event each points at.

A scope narrows it: one account, and/or the events recorded in ``[from, to)``.
A scoped export is not the whole chain, so its check verifies each event's link
alone; a complete one is checked link after link up to the manifest's head.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from psycopg.rows import tuple_row
from psycopg.sql import SQL

from commands.chain import GENESIS
from commands.store import LedgerRecorder
from ledger.application import Ledger
from ledger.documents import Document
from ledger.opening import account_uuid
from projections.export_files import Format, Writer, sha256_of, write_manifest
from projections.export_tables import (
    ALLOCATIONS,
    DEDUPE,
    DOCUMENTS,
    EVENTS,
    LINES,
    PAYMENTS,
    TABLES,
    ExportTable,
)

PAYMENT_EVENTS = frozenset({"PaymentReceived", "PaymentFailed"})


@dataclass(frozen=True, slots=True)
class Scope:
    account_id: str | None = None
    recorded_from: datetime | None = None
    recorded_to: datetime | None = None

    @property
    def complete(self) -> bool:
        return self.account_id is None and self.recorded_from is None and self.recorded_to is None

    def holds(self, recorded_at: datetime) -> bool:
        return (self.recorded_from is None or recorded_at >= self.recorded_from) and (
            self.recorded_to is None or recorded_at < self.recorded_to
        )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _documents_in(event: Any) -> Iterator[Document]:
    """The documents an event carries (an email month's, a proforma, a final invoice)."""
    for value in vars(event).values():
        for item in value if isinstance(value, tuple | list) else (value,):
            if isinstance(item, Document):
                yield item
            elif isinstance(getattr(item, "document", None), Document):
                yield item.document


class _Export:
    def __init__(self, directory: Path, fmt: Format) -> None:
        self.writers = {t.name: Writer(directory, t, fmt) for t in TABLES}
        self.documents: set[str] = set()
        self.exported: set[tuple[UUID, int]] = set()

    def row(self, table: ExportTable, *values: Any) -> None:
        self.writers[table.name].write(
            [
                v if c in table.integers else _text(v)
                for c, v in zip(table.columns, values, strict=True)
            ]
        )

    def document(self, document: Document, notification_id: int) -> None:
        if document.number in self.documents:  # carried again (a proforma replaced or paid)
            return
        self.documents.add(document.number)
        self.row(
            DOCUMENTS,
            document.number,
            document.kind,
            document.account_id,
            document.period,
            document.issued_on,
            document.due_on,
            document.currency,
            document.subtotal.amount,
            document.tax_rate,
            document.tax.amount,
            document.total.amount,
            document.proforma,
            document.contacts,
            notification_id,
        )
        for index, line in enumerate(document.lines, start=1):
            self.row(
                LINES,
                document.number,
                index,
                line.kind,
                line.description,
                line.quantity,
                line.unit_price,
                line.amount.amount,
            )

    def payment(self, event: Any, notification_id: int, account_id: str | None) -> None:
        name = type(event).__name__
        allocations = getattr(event, "allocations", ())
        if name not in PAYMENT_EVENTS and not allocations:
            return
        at = event.effective_at
        if name in PAYMENT_EVENTS:
            failed = name == "PaymentFailed"
            self.row(
                PAYMENTS,
                notification_id,
                account_id,
                event.payment_id,
                "failed" if failed else "succeeded",
                event.amount.amount,
                event.amount.currency,
                event.reference,
                event.request_id,
                event.reason if failed else None,
                str(event.retryable).lower() if failed else None,
                at,
            )
        for allocation in allocations:
            self.row(
                ALLOCATIONS,
                notification_id,
                account_id,
                allocation.payment_id,
                allocation.reference,
                allocation.amount.amount,
                allocation.amount.currency,
                allocation.from_credit,
                at,
            )

    def close(self, directory: Path) -> dict[str, Any]:
        files = {}
        for writer in self.writers.values():
            rows = writer.close()
            files[writer.path.name] = {"rows": rows, "sha256": sha256_of(writer.path)}
        return files


def export_books(
    ledger: Ledger,
    directory: Path,
    fmt: Format,
    scope: Scope,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Write the books into ``directory`` (made, and expected empty) and its manifest."""
    recorder = ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    directory.mkdir(parents=True, exist_ok=True)
    out = _Export(directory, fmt)
    only = account_uuid(scope.account_id) if scope.account_id else None
    with recorder.datastore.get_connection() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        with conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(SQL("SELECT account_id FROM {}").format(recorder.accounts_table))
            accounts = {account_uuid(a): a for (a,) in curs.fetchall()}
            curs.execute(
                SQL(
                    "SELECT notification_id, hash FROM {} ORDER BY notification_id DESC LIMIT 1"
                ).format(recorder.chain_table)
            )
            head = curs.fetchone()
        events = SQL(
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state,"
            " l.hash, l.previous FROM {} e LEFT JOIN (SELECT notification_id, hash,"
            " lag(hash) OVER (ORDER BY notification_id) AS previous FROM {}) l"
            " USING (notification_id) WHERE %s::uuid IS NULL OR e.originator_id = %s"
            " ORDER BY e.notification_id"
        ).format(recorder._events, recorder.chain_table)
        with conn.cursor(name="export_events", row_factory=tuple_row) as curs:
            curs.itersize = 5000
            curs.execute(events, (only, only))
            for count, row in enumerate(curs, start=1):
                nid, originator_id, version, topic, state, link, previous = row
                state = bytes(state)
                event: Any = ledger.mapper.to_domain_event(
                    Notification(
                        id=nid,
                        originator_id=originator_id,
                        originator_version=version,
                        topic=topic,
                        state=state,
                    )
                )
                if not scope.holds(event.timestamp):
                    continue
                account_id = accounts.get(originator_id)
                out.row(
                    EVENTS,
                    nid,
                    originator_id,
                    version,
                    account_id,
                    topic.rsplit(":", 1)[-1],
                    topic,
                    getattr(event, "effective_at", None),
                    event.timestamp,
                    state.decode("utf-8"),
                    None if link is None else bytes(previous or GENESIS).hex(),
                    None if link is None else bytes(link).hex(),
                )
                if not scope.complete:
                    out.exported.add((originator_id, version))
                for document in _documents_in(event):
                    out.document(document, nid)
                out.payment(event, nid, account_id)
                if progress is not None and count % 5000 == 0:
                    progress(5000)
        dedupe = SQL(
            "SELECT account_id, originator_id, originator_version, source, event_id,"
            " message_id FROM {} WHERE %s::text IS NULL OR account_id = %s"
            " ORDER BY originator_id, originator_version, source, event_id"
        ).format(recorder.dedupe_table)
        with conn.cursor(name="export_dedupe", row_factory=tuple_row) as curs:
            curs.itersize = 20000
            curs.execute(dedupe, (scope.account_id, scope.account_id))
            for key in curs:
                if scope.complete or (key[1], key[2]) in out.exported:
                    out.row(DEDUPE, *key)
    manifest = {
        "format": fmt,
        "exported_at": datetime.now(UTC).isoformat(),
        "ledger": f"billing-ledger {importlib.metadata.version('billing-ledger')}",
        "scope": {
            "account_id": scope.account_id,
            "recorded_from": _text(scope.recorded_from),
            "recorded_to": _text(scope.recorded_to),
            "complete": scope.complete,
        },
        "chain_head": None if head is None else f"{head[0]}:{bytes(head[1]).hex()}",
        "files": out.close(directory),
    }
    write_manifest(directory, manifest)
    return manifest
