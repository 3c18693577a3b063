"""Monthly usage per account, and its split by tier.

A row per (account, month): platform emails, emails within the included
allowance, charged emails, custom-SMTP emails (recorded, never charged), the
usage amount, late emails (reported after the month was documented, billed on
a later document), the monthly fee and, once issued, the document number.

The numbers are a pure function of the month's emails (:func:`usage_figures`),
never of how the stream was batched: an open month's row is *set* from the
month as the aggregate holds it after each event, and its amount is what the
month's emails cost at its volume so far (:attr:`ledger.emails.usage.MonthUsage.priced`),
i.e. what its document charges for them if no more come. For a volume plan
that is the month's price at the tier its volume reached, not the sum of what
each email was charged as sent (a prepaid balance pays those, and the close
trues them up). Late emails are *added* to their month's row: each is priced
as sent, whatever the batch, so their sum is the same however they came.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.dispatch import singledispatchmethod

from ledger.emails.account import Account
from ledger.emails.pricing import Charge, total
from ledger.emails.usage import MonthUsage
from ledger.periods import Month
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


@dataclass(frozen=True, slots=True)
class OpenMonthFigures:
    """An open month's row as it now stands (set, not added)."""

    month: Month
    platform: int
    included: int
    charged: int
    custom_smtp: int
    amount: Decimal
    fee: Decimal
    tiers: tuple[Charge, ...]


@dataclass(frozen=True, slots=True)
class LateFigures:
    """Emails reported after their month was documented (added to its row)."""

    month: Month
    late: int
    custom_smtp: int
    amount: Decimal
    tiers: tuple[Charge, ...]


def open_month_figures(usage: MonthUsage) -> OpenMonthFigures:
    priced = usage.priced
    return OpenMonthFigures(
        month=usage.month,
        platform=usage.platform,
        included=usage.included,
        charged=usage.platform - usage.included,
        custom_smtp=usage.custom_smtp,
        amount=total(priced),
        fee=usage.fee.amount if usage.fee is not None else Decimal(0),
        tiers=priced,
    )


def usage_figures(event: Any) -> list[OpenMonthFigures | LateFigures]:
    """What a ``MonthOpened`` or ``EmailsRecorded`` event does to the usage rows.

    Also right for events stored before one event covered one month: an
    ``EmailsRecorded`` carries every open month it changed, as it then stood.
    """
    if isinstance(event, Account.MonthOpened):
        return [open_month_figures(event.usage)]  # type: ignore[attr-defined]
    if not isinstance(event, Account.EmailsRecorded):
        return []
    figures: list[OpenMonthFigures | LateFigures] = [
        open_month_figures(usage)
        for usage in event.months  # type: ignore[attr-defined]
    ]
    for entry in event.entries:  # type: ignore[attr-defined]
        if entry.late:
            figures.append(
                LateFigures(
                    entry.month, entry.platform, entry.custom_smtp, entry.amount, entry.charges
                )
            )
    return figures


_SET_MONTH = (
    "INSERT INTO {schema}.monthly_usage AS u (account_uuid, month, platform_emails,"
    " included_emails, charged_emails, custom_smtp_emails, usage_amount, fee)"
    " VALUES (%(id)s, %(month)s, %(platform)s, %(included)s, %(charged)s, %(smtp)s,"
    " %(amount)s, %(fee)s)"
    " ON CONFLICT (account_uuid, month) DO UPDATE SET"
    " platform_emails = EXCLUDED.platform_emails, included_emails = EXCLUDED.included_emails,"
    " charged_emails = EXCLUDED.charged_emails,"
    " custom_smtp_emails = EXCLUDED.custom_smtp_emails,"
    " usage_amount = EXCLUDED.usage_amount, fee = EXCLUDED.fee"
)
_ADD_LATE = (
    "INSERT INTO {schema}.monthly_usage AS u (account_uuid, month, late_emails,"
    " custom_smtp_emails, usage_amount)"
    " VALUES (%(id)s, %(month)s, %(late)s, %(smtp)s, %(amount)s)"
    " ON CONFLICT (account_uuid, month) DO UPDATE SET"
    " late_emails = u.late_emails + EXCLUDED.late_emails,"
    " custom_smtp_emails = u.custom_smtp_emails + EXCLUDED.custom_smtp_emails,"
    " usage_amount = u.usage_amount + EXCLUDED.usage_amount"
)
_CLEAR_TIERS = "DELETE FROM {schema}.monthly_usage_tiers WHERE account_uuid = %s AND month = %s"
_ADD_TIER = (
    "INSERT INTO {schema}.monthly_usage_tiers AS t VALUES (%s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (account_uuid, month, plan_id, tier, unit_price) DO UPDATE SET"
    " emails = t.emails + EXCLUDED.emails, amount = t.amount + EXCLUDED.amount"
)


def _tier_rows(account: UUID, month: str, tiers: tuple[Charge, ...]) -> Iterable[Change]:
    for charge in tiers:
        yield Change(
            _ADD_TIER,
            (
                account,
                month,
                charge.plan_id,
                charge.tier,
                charge.unit_price,
                charge.count,
                charge.amount,
            ),
        )


def _changes(account: UUID, figures: OpenMonthFigures | LateFigures) -> Iterable[Change]:
    month = str(figures.month)
    if isinstance(figures, OpenMonthFigures):
        yield Change(
            _SET_MONTH,
            {
                "id": account,
                "month": month,
                "platform": figures.platform,
                "included": figures.included,
                "charged": figures.charged,
                "smtp": figures.custom_smtp,
                "amount": figures.amount,
                "fee": figures.fee,
            },
        )
        yield Change(_CLEAR_TIERS, (account, month))
    else:
        yield Change(
            _ADD_LATE,
            {
                "id": account,
                "month": month,
                "late": figures.late,
                "smtp": figures.custom_smtp,
                "amount": figures.amount,
            },
        )
    yield from _tier_rows(account, month, figures.tiers)


class UsageProjection(TableProjection[UsageView]):
    name = "monthly_usage"
    view_class = UsageView

    @singledispatchmethod
    def changes(self, domain_event: Any) -> Iterable[Change]:
        return ()

    @changes.register(Account.MonthOpened)
    @changes.register(Account.EmailsRecorded)
    def _(self, event: Any) -> Iterable[Change]:
        for figures in usage_figures(event):
            yield from _changes(event.originator_id, figures)

    @changes.register(Account.DocumentIssued)
    def _(self, event: Any) -> Iterable[Change]:
        yield Change(
            "UPDATE {schema}.monthly_usage SET document_number = %s"
            " WHERE account_uuid = %s AND month = %s",
            (event.document.number, event.originator_id, str(event.document.period)),
        )
