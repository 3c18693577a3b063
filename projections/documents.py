"""Receipts, invoices and proformas with their lines, as issued (SQL-friendly for reporting)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from eventsourcing.dispatch import singledispatchmethod

from ledger.contacts.account import ContactsAccount
from ledger.documents import Document
from ledger.emails.account import Account
from projections.base import TableProjection
from projections.view import Change, TableView


class DocumentsView(TableView):
    tables = ("documents", "document_lines")
    ddl = (
        "CREATE TABLE IF NOT EXISTS {schema}.documents ("
        " number text PRIMARY KEY, account_id text NOT NULL, account_uuid uuid NOT NULL,"
        " kind text NOT NULL, period text NOT NULL, issued_on date NOT NULL, due_on date,"
        " currency text NOT NULL, subtotal numeric NOT NULL, tax_rate numeric NOT NULL,"
        " tax numeric NOT NULL, total numeric NOT NULL, status text NOT NULL,"
        " proforma text, billable_contacts int, settled_by text,"
        " event_version bigint NOT NULL, recorded_at timestamptz NOT NULL)",
        "CREATE INDEX IF NOT EXISTS documents_account_idx"
        " ON {schema}.documents (account_id, period)",
        "CREATE TABLE IF NOT EXISTS {schema}.document_lines ("
        " number text NOT NULL, line_no int NOT NULL, kind text NOT NULL,"
        " description text NOT NULL,"
        " quantity bigint NOT NULL, unit_price numeric, amount numeric NOT NULL,"
        " PRIMARY KEY (number, line_no))",
    )


def _issued(event: Any, doc: Document, status: str) -> Iterator[Change]:
    yield Change(
        "INSERT INTO {schema}.documents (number, account_id, account_uuid, kind, period,"
        " issued_on, due_on, currency, subtotal, tax_rate, tax, total, status, proforma,"
        " billable_contacts, event_version, recorded_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
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
            event.originator_version,
            event.timestamp,
        ),
    )
    for line_no, line in enumerate(doc.lines, start=1):
        yield Change(
            "INSERT INTO {schema}.document_lines VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                doc.number,
                line_no,
                line.kind,
                line.description,
                line.quantity,
                line.unit_price,
                line.amount.amount,
            ),
        )


def _settle(number: str, status: str, settled_by: str) -> Change:
    return Change(
        "UPDATE {schema}.documents SET status = %s, settled_by = %s WHERE number = %s",
        (status, settled_by, number),
    )


class DocumentsProjection(TableProjection[DocumentsView]):
    """Receipts, invoices and proformas. Status: a receipt is ``paid`` (settled from
    the prepaid balance as issued); an email invoice is ``open`` until paid (payments
    arrive with the payments issue); a proforma is ``open``, then ``paid`` (its
    final invoice, numbered then, is ``paid``) or ``replaced`` by a newer proforma.
    ``settled_by`` names the invoice that paid a proforma or the proforma that replaced it.
    """

    name = "documents"
    view_class = DocumentsView

    @singledispatchmethod
    def changes(self, domain_event: Any) -> Iterable[Change]:
        return ()

    @changes.register(Account.DocumentIssued)
    def _(self, event: Any) -> Iterable[Change]:
        doc = event.document
        yield from _issued(event, doc, "paid" if doc.kind == "receipt" else "open")

    @changes.register(ContactsAccount.ProformaIssued)
    def _(self, event: Any) -> Iterable[Change]:
        yield from _issued(event, event.proforma.document, "open")

    @changes.register(ContactsAccount.ProformaReplaced)
    def _(self, event: Any) -> Iterable[Change]:
        new = event.proforma.document
        yield _settle(event.replaced, "replaced", new.number)
        yield from _issued(event, new, "open")

    @changes.register(ContactsAccount.ProformaPaid)
    def _(self, event: Any) -> Iterable[Change]:
        yield _settle(event.proforma, "paid", event.invoice.number)
        yield from _issued(event, event.invoice, "paid")
