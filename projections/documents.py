"""Receipts, invoices and proformas with their lines, as issued (SQL-friendly for reporting),
and what payments have covered of each: ``paid``, ``amount_due`` and the status."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from eventsourcing.dispatch import singledispatchmethod

from ledger.contacts.account import ContactsAccount
from ledger.documents import Document
from ledger.emails.account import Account
from projections.base import TableProjection
from projections.view import Change, Columns, TableView


class DocumentsView(TableView):
    tables = ("documents", "document_lines")
    ddl = (
        "CREATE TABLE IF NOT EXISTS {schema}.documents ("
        " number text PRIMARY KEY, account_id text NOT NULL, account_uuid uuid NOT NULL,"
        " kind text NOT NULL, period text NOT NULL, issued_on date NOT NULL, due_on date,"
        " currency text NOT NULL, subtotal numeric NOT NULL, tax_rate numeric NOT NULL,"
        " tax numeric NOT NULL, total numeric NOT NULL, status text NOT NULL,"
        " proforma text, billable_contacts int, settled_by text,"
        " event_version bigint NOT NULL, recorded_at timestamptz NOT NULL,"
        " paid numeric NOT NULL DEFAULT 0, amount_due numeric NOT NULL DEFAULT 0)",
        # Added with payments: a table made before gets the columns, filled from the
        # statuses it could hold then (open: nothing paid; paid: all of it). Only when
        # missing: ALTER TABLE takes its lock even when there is nothing to add.
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_attribute"
        " WHERE attrelid = '{schema}.documents'::regclass AND attname = 'paid'"
        " AND NOT attisdropped) THEN"
        " ALTER TABLE {schema}.documents ADD COLUMN paid numeric NOT NULL DEFAULT 0,"
        " ADD COLUMN amount_due numeric NOT NULL DEFAULT 0;"
        " UPDATE {schema}.documents SET paid = CASE WHEN status = 'paid' THEN total ELSE 0 END,"
        " amount_due = CASE WHEN status = 'open' THEN total ELSE 0 END;"
        " END IF; END $$",
        "CREATE INDEX IF NOT EXISTS documents_account_idx"
        " ON {schema}.documents (account_id, period)",
        "CREATE TABLE IF NOT EXISTS {schema}.document_lines ("
        " number text NOT NULL, line_no int NOT NULL, kind text NOT NULL,"
        " description text NOT NULL,"
        " quantity bigint NOT NULL, unit_price numeric, amount numeric NOT NULL,"
        " PRIMARY KEY (number, line_no))",
    )


_DOCUMENTS = Columns(
    (
        ("number", "text"),
        ("account_id", "text"),
        ("account_uuid", "uuid"),
        ("kind", "text"),
        ("period", "text"),
        ("issued_on", "date"),
        ("due_on", "date"),
        ("currency", "text"),
        ("subtotal", "numeric"),
        ("tax_rate", "numeric"),
        ("tax", "numeric"),
        ("total", "numeric"),
        ("status", "text"),
        ("proforma", "text"),
        ("billable_contacts", "int"),
        ("settled_by", "text"),
        ("event_version", "bigint"),
        ("recorded_at", "timestamptz"),
        ("paid", "numeric"),
        ("amount_due", "numeric"),
    )
)
_INSERT_DOCUMENTS = "INSERT INTO {schema}.documents SELECT * FROM {rows}"
_LINES = Columns(
    (
        ("number", "text"),
        ("line_no", "int"),
        ("kind", "text"),
        ("description", "text"),
        ("quantity", "bigint"),
        ("unit_price", "numeric"),
        ("amount", "numeric"),
    )
)
_INSERT_LINES = "INSERT INTO {schema}.document_lines SELECT * FROM {rows}"
_SETTLES = Columns((("number", "text"), ("status", "text"), ("settled_by", "text")))
# Paid or replaced: nothing more is due (a replaced proforma's replacement is).
_SETTLE = (
    "UPDATE {schema}.documents AS t SET status = b.status, settled_by = b.settled_by,"
    " paid = CASE WHEN b.status = 'paid' THEN t.total ELSE t.paid END, amount_due = 0"
    " FROM {rows} WHERE t.number = b.number"
)
_PAYMENTS = Columns((("number", "text"), ("amount", "numeric")))
_PAY = (
    "UPDATE {schema}.documents AS t SET paid = t.paid + b.amount,"
    " amount_due = t.amount_due - b.amount,"
    " status = CASE WHEN t.amount_due = b.amount THEN 'paid' ELSE 'partially_paid' END"
    " FROM {rows} WHERE t.number = b.number"
)
#: Where a row's status, paid and amount due are (``DocumentRows.issue``).
_STATUS, _PAID, _DUE = 12, 18, 19


class DocumentRows:
    """Documents issued in the batch (settled in it too, if so) and settlements of
    documents stored before it, in the order the events came."""

    def __init__(self) -> None:
        self.issued: dict[str, list[Any]] = {}
        self.lines: list[tuple[Any, ...]] = []
        self.settled: dict[str, tuple[str, str]] = {}
        #: Allocations to documents stored before the batch, summed per document.
        self.payments: dict[str, Decimal] = {}

    def issue(self, event: Any, doc: Document, status: str) -> None:
        """``status`` ``paid``: settled as issued (a receipt, a proforma's final invoice)."""
        total = doc.total.amount
        paid = total if status == "paid" else Decimal(0)
        self.issued[doc.number] = [
            doc.number,
            doc.account_id,
            event.originator_id,
            doc.kind,
            str(doc.period),
            doc.issued_on,
            doc.due_on,
            doc.currency,
            doc.subtotal.amount,
            doc.tax_rate,
            doc.tax.amount,
            doc.total.amount,
            status,
            doc.proforma,
            doc.contacts,
            None,
            event.originator_version,
            event.timestamp,
            paid,
            total - paid,
        ]
        self.lines.extend(
            (
                doc.number,
                line_no,
                line.kind,
                line.description,
                line.quantity,
                line.unit_price,
                line.amount.amount,
            )
            for line_no, line in enumerate(doc.lines, start=1)
        )

    def settle(self, number: str, status: str, settled_by: str) -> None:
        row = self.issued.get(number)
        if row is None:
            self.settled[number] = (status, settled_by)
        else:
            row[_STATUS], row[15] = status, settled_by
            if status == "paid":
                row[_PAID] = row[11]  # the total
            row[_DUE] = Decimal(0)

    def pay(self, allocations: Any) -> None:
        """A payment's (or held credit's) allocations: what each document received."""
        for allocation in allocations:
            number, amount = allocation.reference, allocation.amount.amount
            row = self.issued.get(number)
            if row is None:
                self.payments[number] = self.payments.get(number, Decimal(0)) + amount
            else:
                row[_PAID] += amount
                row[_DUE] -= amount
                row[_STATUS] = "paid" if row[_DUE] == 0 else "partially_paid"

    def changes(self) -> list[Change]:
        changes = []
        # Before the settlements: a document is settled after the payment that paid it.
        if self.payments:
            changes.append(_PAYMENTS.change(_PAY, list(self.payments.items())))
        if self.settled:
            changes.append(_SETTLES.change(_SETTLE, [(n, *s) for n, s in self.settled.items()]))
        if self.issued:
            changes.append(
                _DOCUMENTS.change(_INSERT_DOCUMENTS, [tuple(r) for r in self.issued.values()])
            )
        if self.lines:
            changes.append(_LINES.change(_INSERT_LINES, self.lines))
        return changes


class DocumentsProjection(TableProjection[DocumentsView]):
    """Receipts, invoices and proformas. Status: a receipt is ``paid`` (settled from
    the prepaid balance as issued); an email invoice or a proforma is ``open``, then
    ``partially_paid`` as payments cover part of it and ``paid`` when they cover all
    (the receivable's state, ``ledger.payments.receivables``); a paid proforma's
    final invoice, numbered then, is ``paid``; a proforma may instead be ``replaced``
    by a newer one (nothing is due on it then). ``settled_by`` names the invoice that
    paid a proforma or the proforma that replaced it.
    """

    name = "documents"
    view_class = DocumentsView
    rows_class = DocumentRows

    @singledispatchmethod
    def fold(self, domain_event: Any, rows: DocumentRows) -> None:
        pass

    @fold.register(Account.DocumentIssued)
    def _(self, event: Any, rows: DocumentRows) -> None:
        doc = event.document
        rows.issue(event, doc, "paid" if doc.kind == "receipt" else "open")

    @fold.register(ContactsAccount.ProformaIssued)
    def _(self, event: Any, rows: DocumentRows) -> None:
        rows.issue(event, event.proforma.document, "open")

    @fold.register(ContactsAccount.ProformaReplaced)
    def _(self, event: Any, rows: DocumentRows) -> None:
        new = event.proforma.document
        rows.settle(event.replaced, "replaced", new.number)
        rows.issue(event, new, "open")

    @fold.register(ContactsAccount.ProformaPaid)
    def _(self, event: Any, rows: DocumentRows) -> None:
        rows.settle(event.proforma, "paid", event.invoice.number)
        rows.issue(event, event.invoice, "paid")

    @fold.register(Account.PaymentReceived)
    @fold.register(Account.CreditApplied)
    @fold.register(ContactsAccount.PaymentReceived)
    @fold.register(ContactsAccount.CreditApplied)
    def _(self, event: Any, rows: DocumentRows) -> None:
        rows.pay(event.allocations)
