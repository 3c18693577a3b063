"""Receipts and invoices with their lines, as issued (SQL-friendly for reporting)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventsourcing.dispatch import singledispatchmethod

from ledger.account import Account
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
        " event_version bigint NOT NULL, recorded_at timestamptz NOT NULL)",
        "CREATE INDEX IF NOT EXISTS documents_account_idx"
        " ON {schema}.documents (account_id, period)",
        "CREATE TABLE IF NOT EXISTS {schema}.document_lines ("
        " number text NOT NULL, line_no int NOT NULL, kind text NOT NULL,"
        " description text NOT NULL,"
        " quantity bigint NOT NULL, unit_price numeric, amount numeric NOT NULL,"
        " PRIMARY KEY (number, line_no))",
    )


class DocumentsProjection(TableProjection[DocumentsView]):
    name = "documents"
    view_class = DocumentsView

    @singledispatchmethod
    def changes(self, domain_event: Any) -> Iterable[Change]:
        return ()

    @changes.register(Account.DocumentIssued)
    def _(self, event: Any) -> Iterable[Change]:
        doc = event.document
        # A receipt is settled from the prepaid balance as it is issued; an
        # invoice is open until paid (payments arrive with the payments issue).
        status = "paid" if doc.kind == "receipt" else "open"
        yield Change(
            "INSERT INTO {schema}.documents VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s)",
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
