"""Monthly usage per account, and its split by tier.

A row per (account, month): platform emails, emails within the included
allowance, charged emails, custom-SMTP emails (recorded, never charged), the
exact amount charged so far, late emails (reported after the month was
documented, billed on a later document), the monthly fee and, once issued,
the document number.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventsourcing.dispatch import singledispatchmethod

from ledger.account import Account
from projections.base import TableProjection
from projections.view import Change, TableView


class UsageView(TableView):
    tables = ("monthly_usage", "monthly_usage_tiers")
    ddl = (
        "CREATE TABLE IF NOT EXISTS {schema}.monthly_usage ("
        " account_uuid uuid NOT NULL, month text NOT NULL,"
        " platform_emails bigint NOT NULL DEFAULT 0,"
        " included_emails bigint NOT NULL DEFAULT 0, charged_emails bigint NOT NULL DEFAULT 0,"
        " custom_smtp_emails bigint NOT NULL DEFAULT 0, late_emails bigint NOT NULL DEFAULT 0,"
        " usage_amount numeric NOT NULL DEFAULT 0, fee numeric NOT NULL DEFAULT 0,"
        " document_number text, PRIMARY KEY (account_uuid, month))",
        "CREATE TABLE IF NOT EXISTS {schema}.monthly_usage_tiers ("
        " account_uuid uuid NOT NULL, month text NOT NULL, plan_id text NOT NULL,"
        " tier int NOT NULL,"
        " unit_price numeric NOT NULL, emails bigint NOT NULL, amount numeric NOT NULL,"
        " PRIMARY KEY (account_uuid, month, plan_id, tier, unit_price))",
    )


_UPSERT_MONTH = (
    "INSERT INTO {schema}.monthly_usage AS u (account_uuid, month, platform_emails,"
    " included_emails, charged_emails, custom_smtp_emails, late_emails, usage_amount, fee)"
    " VALUES (%(id)s, %(month)s, %(platform)s, %(included)s, %(charged)s, %(smtp)s, %(late)s,"
    " %(amount)s, %(fee)s)"
    " ON CONFLICT (account_uuid, month) DO UPDATE SET"
    " platform_emails = u.platform_emails + EXCLUDED.platform_emails,"
    " included_emails = u.included_emails + EXCLUDED.included_emails,"
    " charged_emails = u.charged_emails + EXCLUDED.charged_emails,"
    " custom_smtp_emails = u.custom_smtp_emails + EXCLUDED.custom_smtp_emails,"
    " late_emails = u.late_emails + EXCLUDED.late_emails,"
    " usage_amount = u.usage_amount + EXCLUDED.usage_amount, fee = u.fee + EXCLUDED.fee"
)
_UPSERT_TIER = (
    "INSERT INTO {schema}.monthly_usage_tiers AS t VALUES (%s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (account_uuid, month, plan_id, tier, unit_price) DO UPDATE SET"
    " emails = t.emails + EXCLUDED.emails, amount = t.amount + EXCLUDED.amount"
)


def _month(event: Any, month: object, **counts: Any) -> Change:
    values = {
        "platform": 0,
        "included": 0,
        "charged": 0,
        "smtp": 0,
        "late": 0,
        "amount": 0,
        "fee": 0,
    }
    values.update(counts)
    return Change(_UPSERT_MONTH, {"id": event.originator_id, "month": str(month), **values})


class UsageProjection(TableProjection[UsageView]):
    name = "monthly_usage"
    view_class = UsageView

    @singledispatchmethod
    def changes(self, domain_event: Any) -> Iterable[Change]:
        return ()

    @changes.register(Account.MonthOpened)
    def _(self, event: Any) -> Iterable[Change]:
        yield _month(event, event.usage.month, fee=event.fee.amount)

    @changes.register(Account.EmailsRecorded)
    def _(self, event: Any) -> Iterable[Change]:
        for entry in event.entries:
            if entry.late:
                yield _month(
                    event,
                    entry.month,
                    late=entry.platform,
                    smtp=entry.custom_smtp,
                    amount=entry.amount,
                )
            else:
                yield _month(
                    event,
                    entry.month,
                    platform=entry.platform,
                    included=entry.included,
                    charged=entry.platform - entry.included,
                    smtp=entry.custom_smtp,
                    amount=entry.amount,
                )
            for charge in entry.charges:
                yield Change(
                    _UPSERT_TIER,
                    (
                        event.originator_id,
                        str(entry.month),
                        charge.plan_id,
                        charge.tier,
                        charge.unit_price,
                        charge.count,
                        charge.amount,
                    ),
                )

    @changes.register(Account.DocumentIssued)
    def _(self, event: Any) -> Iterable[Change]:
        yield Change(
            "UPDATE {schema}.monthly_usage SET document_number = %s"
            " WHERE account_uuid = %s AND month = %s",
            (event.document.number, event.originator_id, str(event.document.period)),
        )
