"""Billable contacts per account (contacts plans), and each allowance month's emails.

``contact_counts`` holds the exact billable count after every applied batch
of contact changes; ``allowance_usage`` holds, per allowance month (the
anchor's monthly anniversaries), the platform and custom-SMTP emails, the
contacts and allowance the month was priced with, and the overage billed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.dispatch import singledispatchmethod

from ledger.contacts.account import ContactsAccount
from projections.base import AccountChange, TableProjection, account_change
from projections.view import Change, Columns, TableView


class ContactsView(TableView):
    tables = ("contact_counts", "allowance_usage")
    ddl = (
        "CREATE TABLE IF NOT EXISTS {schema}.contact_counts ("
        " account_uuid uuid PRIMARY KEY, account_id text NOT NULL UNIQUE,"
        " billable_contacts bigint NOT NULL DEFAULT 0,"
        " changes_applied bigint NOT NULL DEFAULT 0, last_change_at timestamptz,"
        " updated_at timestamptz NOT NULL, version bigint NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {schema}.allowance_usage ("
        " account_uuid uuid NOT NULL, month_index int NOT NULL,"
        " period_start date NOT NULL, period_end date NOT NULL,"
        " platform_emails bigint NOT NULL, custom_smtp_emails bigint NOT NULL,"
        " contacts bigint, allowance bigint, overage_emails bigint NOT NULL,"
        " billed_overage_emails bigint NOT NULL, overage_unit_price numeric,"
        " PRIMARY KEY (account_uuid, month_index))",
    )


@dataclass(slots=True)
class _Count(AccountChange):
    """One account's change of ``contact_counts`` in a batch."""

    account_id: str | None = None  # opened in the batch
    billable: int | None = None
    changes_applied: int = 0
    last_change_at: datetime | None = None


_COUNTS = Columns(
    (
        ("account_uuid", "uuid"),
        ("account_id", "text"),
        ("billable", "bigint"),
        ("changes_applied", "bigint"),
        ("last_change_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("version", "bigint"),
    )
)
_MERGE_COUNTS = (
    "MERGE INTO {schema}.contact_counts AS t USING {rows} ON t.account_uuid = b.account_uuid"
    " WHEN MATCHED THEN UPDATE SET billable_contacts = COALESCE(b.billable, t.billable_contacts),"
    " changes_applied = t.changes_applied + b.changes_applied,"
    " last_change_at = GREATEST(t.last_change_at, b.last_change_at),"
    " updated_at = b.updated_at, version = b.version"
    " WHEN NOT MATCHED AND b.account_id IS NOT NULL THEN INSERT (account_uuid, account_id,"
    " billable_contacts, changes_applied, last_change_at, updated_at, version)"
    " VALUES (b.account_uuid, b.account_id, COALESCE(b.billable, 0), b.changes_applied,"
    " b.last_change_at, b.updated_at, b.version)"
)
_MONTHS = Columns(
    (
        ("account_uuid", "uuid"),
        ("month_index", "int"),
        ("period_start", "date"),
        ("period_end", "date"),
        ("platform_emails", "bigint"),
        ("custom_smtp_emails", "bigint"),
        ("contacts", "bigint"),
        ("allowance", "bigint"),
        ("overage_emails", "bigint"),
        ("billed_overage_emails", "bigint"),
        ("overage_unit_price", "numeric"),
    )
)
_UPSERT_MONTHS = (
    "INSERT INTO {schema}.allowance_usage SELECT * FROM {rows}"
    " ON CONFLICT (account_uuid, month_index) DO UPDATE SET"
    " platform_emails = EXCLUDED.platform_emails,"
    " custom_smtp_emails = EXCLUDED.custom_smtp_emails, contacts = EXCLUDED.contacts,"
    " allowance = EXCLUDED.allowance, overage_emails = EXCLUDED.overage_emails,"
    " billed_overage_emails = EXCLUDED.billed_overage_emails,"
    " overage_unit_price = EXCLUDED.overage_unit_price"
)


class ContactRows:
    def __init__(self) -> None:
        self.counts: dict[UUID, _Count] = {}
        #: Events carry each touched month's whole state: the batch's last one is the row.
        self.months: dict[tuple[UUID, int], tuple[Any, ...]] = {}

    def count(self, event: Any) -> _Count:
        return account_change(self.counts, event, _Count)

    def allowance_months(self, event: Any) -> None:
        for month in event.months:
            self.months[(event.originator_id, month.index)] = (
                event.originator_id,
                month.index,
                month.period.start,
                month.period.end,
                month.platform,
                month.custom_smtp,
                month.contacts,
                month.allowance,
                month.overage,
                month.billed,
                month.unit_price,
            )

    def changes(self) -> list[Change]:
        changes = []
        if self.counts:
            rows = [
                (
                    account,
                    c.account_id,
                    c.billable,
                    c.changes_applied,
                    c.last_change_at,
                    c.updated_at,
                    c.version,
                )
                for account, c in self.counts.items()
            ]
            changes.append(_COUNTS.change(_MERGE_COUNTS, rows))
        if self.months:
            changes.append(_MONTHS.change(_UPSERT_MONTHS, list(self.months.values())))
        return changes


class ContactsProjection(TableProjection[ContactsView]):
    name = "contacts"
    view_class = ContactsView
    rows_class = ContactRows

    @singledispatchmethod
    def fold(self, domain_event: Any, rows: ContactRows) -> None:
        pass

    @fold.register(ContactsAccount.Opened)
    def _(self, event: Any, rows: ContactRows) -> None:
        rows.count(event).account_id = event.account_id

    @fold.register(ContactsAccount.ContactsChanged)
    def _(self, event: Any, rows: ContactRows) -> None:
        count = rows.count(event)
        count.billable = event.billable
        count.changes_applied += len(event.changes)
        if count.last_change_at is None or event.effective_at > count.last_change_at:
            count.last_change_at = event.effective_at

    @fold.register(ContactsAccount.EmailsRecorded)
    @fold.register(ContactsAccount.ProformaIssued)
    @fold.register(ContactsAccount.ProformaReplaced)
    def _(self, event: Any, rows: ContactRows) -> None:
        rows.allowance_months(event)
