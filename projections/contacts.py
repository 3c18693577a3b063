"""Billable contacts per account (contacts plans), and each allowance month's emails.

``contact_counts`` holds the exact billable count after every applied batch
of contact changes; ``allowance_usage`` holds, per allowance month (the
anchor's monthly anniversaries), the platform and custom-SMTP emails, the
contacts and allowance the month was priced with, and the overage billed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventsourcing.dispatch import singledispatchmethod

from ledger.contacts.account import ContactsAccount
from projections.base import TableProjection
from projections.view import Change, TableView


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


_UPSERT_MONTH = (
    "INSERT INTO {schema}.allowance_usage VALUES"
    " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (account_uuid, month_index) DO UPDATE SET"
    " platform_emails = EXCLUDED.platform_emails,"
    " custom_smtp_emails = EXCLUDED.custom_smtp_emails, contacts = EXCLUDED.contacts,"
    " allowance = EXCLUDED.allowance, overage_emails = EXCLUDED.overage_emails,"
    " billed_overage_emails = EXCLUDED.billed_overage_emails,"
    " overage_unit_price = EXCLUDED.overage_unit_price"
)


def _months(event: Any) -> Iterable[Change]:
    """Events carry each touched month's whole state: rows are replaced, not summed."""
    for month in event.months:
        yield Change(
            _UPSERT_MONTH,
            (
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
            ),
        )


class ContactsProjection(TableProjection[ContactsView]):
    name = "contacts"
    view_class = ContactsView

    @singledispatchmethod
    def changes(self, domain_event: Any) -> Iterable[Change]:
        return ()

    @changes.register(ContactsAccount.Opened)
    def _(self, event: Any) -> Iterable[Change]:
        yield Change(
            "INSERT INTO {schema}.contact_counts (account_uuid, account_id, updated_at, version)"
            " VALUES (%s, %s, %s, %s)",
            (event.originator_id, event.account_id, event.timestamp, event.originator_version),
        )

    @changes.register(ContactsAccount.ContactsChanged)
    def _(self, event: Any) -> Iterable[Change]:
        yield Change(
            "UPDATE {schema}.contact_counts SET billable_contacts = %s,"
            " changes_applied = changes_applied + %s,"
            " last_change_at = GREATEST(last_change_at, %s), updated_at = %s, version = %s"
            " WHERE account_uuid = %s",
            (
                event.billable,
                len(event.changes),
                event.effective_at,
                event.timestamp,
                event.originator_version,
                event.originator_id,
            ),
        )

    @changes.register(ContactsAccount.EmailsRecorded)
    @changes.register(ContactsAccount.ProformaIssued)
    @changes.register(ContactsAccount.ProformaReplaced)
    def _(self, event: Any) -> Iterable[Change]:
        return _months(event)
