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

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.dispatch import singledispatchmethod

from ledger.emails.account import Account
from ledger.emails.pricing import Charge, total
from ledger.emails.usage import MonthStanding
from ledger.periods import Month
from projections.base import TableProjection
from projections.view import Change, Columns, TableView


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


def open_month_figures(month: MonthStanding) -> OpenMonthFigures:
    return OpenMonthFigures(
        month=month.month,
        platform=month.platform,
        included=month.included,
        charged=month.platform - month.included,
        custom_smtp=month.custom_smtp,
        amount=total(month.priced),
        fee=month.fee.amount if month.fee is not None else Decimal(0),
        tiers=month.priced,
    )


def usage_figures(event: Any) -> list[OpenMonthFigures | LateFigures]:
    """What a ``MonthOpened`` or ``EmailsRecorded`` event does to the usage rows.

    Also right for events stored before one event covered one month: an
    ``EmailsRecorded`` carries every open month it changed, as it then stood.
    """
    if isinstance(event, Account.MonthOpened):
        return [open_month_figures(event.usage.standing())]  # type: ignore[attr-defined]
    if not isinstance(event, Account.EmailsRecorded):
        return []
    figures: list[OpenMonthFigures | LateFigures] = [
        open_month_figures(standing) for standing in event.standings
    ]
    for entry in event.entries:
        if entry.late:
            figures.append(
                LateFigures(
                    entry.month, entry.platform, entry.custom_smtp, entry.amount, entry.charges
                )
            )
    return figures


TierKey = tuple[str, int, Decimal]


@dataclass(slots=True)
class _Month:
    """One (account, month) row's change in a batch, in the order its events came.

    A set replaces what the row held (all but ``late_emails`` and the document
    number) and its tiers; additions after it add to it. A document number is
    written to a row that exists when its event comes: one made earlier in the
    batch (``created_document``) or one already stored (``document``).
    """

    figures: OpenMonthFigures | None = None
    late: int = 0
    smtp: int = 0  # added since the last set
    amount: Decimal = Decimal(0)  # added since the last set
    creates: bool = False
    document: str | None = None
    created_document: str | None = None
    cleared: bool = False
    tiers: dict[TierKey, list[Any]] = field(default_factory=dict)

    def set(self, figures: OpenMonthFigures) -> None:
        self.figures, self.smtp, self.amount = figures, 0, Decimal(0)
        self.creates = self.cleared = True
        self.tiers = {}
        self.add_tiers(figures.tiers)

    def add(self, figures: LateFigures) -> None:
        self.late += figures.late
        self.smtp += figures.custom_smtp
        self.amount += figures.amount
        self.creates = True
        self.add_tiers(figures.tiers)

    def add_tiers(self, charges: tuple[Charge, ...]) -> None:
        for charge in charges:
            held = self.tiers.get(charge.key)
            if held is None:
                self.tiers[charge.key] = [charge.count, charge.amount]
            else:
                held[0] += charge.count
                held[1] += charge.amount

    def documented(self, number: str) -> None:
        self.document = number
        if self.creates:
            self.created_document = number

    def row(self, account: UUID, month: str) -> tuple[Any, ...]:
        f = self.figures
        return (
            account,
            month,
            f is not None,
            f.platform if f else 0,
            f.included if f else 0,
            f.charged if f else 0,
            (f.custom_smtp if f else 0) + self.smtp,
            self.late,
            (f.amount if f else Decimal(0)) + self.amount,
            f.fee if f else Decimal(0),
            self.creates,
            self.document,
            self.created_document,
        )


_MONTHS = Columns(
    (
        ("account_uuid", "uuid"),
        ("month", "text"),
        ("is_set", "boolean"),
        ("platform", "bigint"),
        ("included", "bigint"),
        ("charged", "bigint"),
        ("smtp", "bigint"),
        ("late", "bigint"),
        ("amount", "numeric"),
        ("fee", "numeric"),
        ("creates", "boolean"),
        ("document", "text"),
        ("created_document", "text"),
    )
)
_MERGE_MONTHS = (
    "MERGE INTO {schema}.monthly_usage AS t USING {rows}"
    " ON t.account_uuid = b.account_uuid AND t.month = b.month"
    " WHEN MATCHED AND b.is_set THEN UPDATE SET platform_emails = b.platform,"
    " included_emails = b.included, charged_emails = b.charged, custom_smtp_emails = b.smtp,"
    " usage_amount = b.amount, fee = b.fee, late_emails = t.late_emails + b.late,"
    " document_number = COALESCE(b.document, t.document_number)"
    " WHEN MATCHED THEN UPDATE SET custom_smtp_emails = t.custom_smtp_emails + b.smtp,"
    " usage_amount = t.usage_amount + b.amount, late_emails = t.late_emails + b.late,"
    " document_number = COALESCE(b.document, t.document_number)"
    " WHEN NOT MATCHED AND b.creates THEN INSERT (account_uuid, month, platform_emails,"
    " included_emails, charged_emails, custom_smtp_emails, late_emails, usage_amount, fee,"
    " document_number) VALUES (b.account_uuid, b.month, b.platform, b.included, b.charged,"
    " b.smtp, b.late, b.amount, b.fee, b.created_document)"
)
_KEYS = Columns((("account_uuid", "uuid"), ("month", "text")))
_CLEAR_TIERS = (
    "DELETE FROM {schema}.monthly_usage_tiers AS t USING {rows}"
    " WHERE t.account_uuid = b.account_uuid AND t.month = b.month"
)
_TIERS = Columns(
    (
        ("account_uuid", "uuid"),
        ("month", "text"),
        ("plan_id", "text"),
        ("tier", "int"),
        ("unit_price", "numeric"),
        ("emails", "bigint"),
        ("amount", "numeric"),
    )
)
_ADD_TIERS = (
    "INSERT INTO {schema}.monthly_usage_tiers AS t SELECT * FROM {rows}"
    " ON CONFLICT (account_uuid, month, plan_id, tier, unit_price) DO UPDATE SET"
    " emails = t.emails + EXCLUDED.emails, amount = t.amount + EXCLUDED.amount"
)


class UsageRows:
    def __init__(self) -> None:
        self.months: dict[tuple[UUID, str], _Month] = {}

    def month(self, account: UUID, month: Month | str) -> _Month:
        key = (account, str(month))
        pending = self.months.get(key)
        if pending is None:
            pending = self.months[key] = _Month()
        return pending

    def changes(self) -> list[Change]:
        if not self.months:
            return []
        changes = [_MONTHS.change(_MERGE_MONTHS, [m.row(*key) for key, m in self.months.items()])]
        cleared = [key for key, m in self.months.items() if m.cleared]
        if cleared:
            changes.append(_KEYS.change(_CLEAR_TIERS, cleared))
        tiers = [
            (*key, *tier, emails, amount)
            for key, m in self.months.items()
            for tier, (emails, amount) in m.tiers.items()
        ]
        if tiers:
            changes.append(_TIERS.change(_ADD_TIERS, tiers))
        return changes


class UsageProjection(TableProjection[UsageView]):
    name = "monthly_usage"
    view_class = UsageView
    rows_class = UsageRows

    @singledispatchmethod
    def fold(self, domain_event: Any, rows: UsageRows) -> None:
        pass

    @fold.register(Account.MonthOpened)
    @fold.register(Account.EmailsRecorded)
    def _(self, event: Any, rows: UsageRows) -> None:
        for figures in usage_figures(event):
            month = rows.month(event.originator_id, figures.month)
            if isinstance(figures, OpenMonthFigures):
                month.set(figures)
            else:
                month.add(figures)

    @fold.register(Account.DocumentIssued)
    def _(self, event: Any, rows: UsageRows) -> None:
        document = event.document
        rows.month(event.originator_id, document.period).documented(document.number)
