"""The lines of a contacts subscription's documents (seed 002), as pure functions.

A renewal proforma prices the next period in advance: the contacts tier and
each product per month times the months in the period, less the period
discount; a minimum-price line lifts it to the floor when it would be lower.
Overage (emails beyond the monthly allowance) is usage, not price: it is
billed after the allowance month, never fills the floor, and never lowers it.
Every line is rounded once, half-up, to the currency's minor unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from ledger.contacts.renewal import RenewalPeriod
from ledger.contacts.subscriptions import (
    PERIOD_LABELS,
    AllowanceMonth,
    Subscription,
    SubscriptionQuote,
    apply_floor,
)
from ledger.documents import Document, Line, assemble
from ledger.errors import LedgerError
from ledger.money import Money
from ledger.plans import ContactsPlan


class ProformaNotFound(LedgerError):
    def __init__(self, account_id: str, proforma_id: str, why: str = "") -> None:
        super().__init__(f"account {account_id!r} has no unpaid proforma {proforma_id!r}{why}")


class InvalidPayment(LedgerError):
    pass


@dataclass(frozen=True, slots=True)
class OpenProforma:
    """An unpaid proforma and what it takes to price it again."""

    document: Document
    counted_at: datetime | None  # None: an overage-only proforma
    subscription: Subscription | None
    usage_lines: tuple[Line, ...]


def proforma_document(
    *,
    account_id: str,
    sequence: int,
    period: RenewalPeriod,
    lines: list[Line],
    issued_on: date,
    currency: str,
    tax_rate: Decimal,
    contacts: int | None,
) -> Document:
    """A proforma takes the account's own sequence, never a gapless number: only its
    payment issues the numbered invoice (:func:`final_invoice`)."""
    return assemble(
        number=f"PF-{account_id}-{sequence:04d}",
        kind="proforma",
        account_id=account_id,
        period=period,
        issued_on=issued_on,
        due_on=issued_on,  # card payment at renewal: payable on receipt
        currency=currency,
        lines=lines,
        tax_rate=tax_rate,
        accrued=Money.zero(currency),
        contacts=contacts,
    )


def check_payable_on(proforma: Document, proforma_id: str, paid_on: date) -> None:
    """Its final invoice is dated the day it was paid: not before the proforma's own date."""
    if paid_on < proforma.issued_on:
        raise InvalidPayment(
            f"{proforma_id} was issued on {proforma.issued_on}: it cannot be paid on {paid_on}"
        )


def final_invoice(
    proforma: Document, proforma_id: str, paid_on: date, next_number: Callable[[int], str]
) -> Document:
    """The numbered invoice a payment on the local date ``paid_on`` issues: the
    proforma's lines, dated the day it was paid (never before it was issued)."""
    check_payable_on(proforma, proforma_id, paid_on)
    invoice = replace(
        proforma,
        number=next_number(paid_on.year),
        kind="invoice",
        issued_on=paid_on,
        due_on=None,
        proforma=proforma_id,
    )
    invoice.check_invariants()
    return invoice


def _money(amount: Decimal, currency: str) -> Money:
    return Money(amount, currency).rounded()


def subscription_lines(
    plan: ContactsPlan, quote: SubscriptionQuote, period: RenewalPeriod, currency: str
) -> list[Line]:
    label = PERIOD_LABELS[quote.period]
    months = quote.months
    lines = [
        Line(
            "subscription",
            f"{plan.name}, {label} {period}: {quote.contacts:,} billable contacts"
            f" (tier {quote.tier}), {months} x {quote.contacts_monthly}",
            months,
            quote.contacts_monthly,
            _money(quote.contacts_monthly * months, currency),
        )
    ]
    for product, price in quote.products:
        lines.append(
            Line(
                "product",
                f"Product {product}, {months} x {price}",
                months,
                price,
                _money(price * months, currency),
            )
        )
    if quote.discount_rate:
        lines.append(
            Line(
                "period_discount",
                f"Discount for {label} billing ({quote.discount_rate * 100:g}%)",
                1,
                None,
                -_money(quote.discount, currency),
            )
        )
    return lines


def floor_line(lines: list[Line], floor: Decimal | None, currency: str) -> Line | None:
    """The minimum-price line when the subscription lines fall below the floor."""
    amount = sum((line.amount.amount for line in lines), Decimal(0))
    _, adjustment = apply_floor(amount, floor)
    if not adjustment:
        return None
    return Line(
        "minimum_price",
        f"Minimum price: not below this subscription's first invoice ({floor})",
        1,
        None,
        _money(adjustment, currency),
    )


def overage_lines(month: AllowanceMonth, currency: str, *, late: bool) -> list[Line]:
    """Included emails, emails beyond the allowance, and custom SMTP, for one allowance month.

    Only what was not billed yet: on a late line, the emails reported after
    the month was documented that pushed it (further) over its allowance.
    """
    lines: list[Line] = []
    period = month.period
    price = month.unit_price or Decimal(0)
    count = month.unbilled
    if late:
        if count:
            lines.append(
                Line(
                    "late_overage",
                    f"Emails from {period} beyond its allowance of {month.allowance or 0:,},"
                    " not billed before (reported late, or under a cent until now)",
                    count,
                    price,
                    _money(price * count, currency),
                )
            )
        return lines
    allowance = month.allowance or 0
    if month.platform:
        lines.append(
            Line(
                "included",
                f"Emails included {period}: {allowance:,}"
                f" ({_allowance_basis(month)}), {month.platform:,} sent",
                min(month.platform, allowance),
                Decimal(0),
                Money.zero(currency).rounded(),
            )
        )
    if count:
        lines.append(
            Line(
                "overage",
                f"Emails beyond the allowance {period}",
                count,
                price,
                _money(price * count, currency),
            )
        )
    if month.custom_smtp:
        lines.append(
            Line(
                "custom_smtp",
                f"Emails via custom SMTP {period} (never counted)",
                month.custom_smtp,
                Decimal(0),
                Money.zero(currency).rounded(),
            )
        )
    return lines


def _allowance_basis(month: AllowanceMonth) -> str:
    if month.contacts is None:
        return "no subscription covered this month"
    return f"for {month.contacts:,} billable contacts at renewal"
