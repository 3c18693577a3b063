"""The lines of a contacts subscription's documents (seed 002), as pure functions.

A renewal proforma prices the next period in advance: the contacts tier and
each product per month times the months in the period, less the period
discount; a minimum-price line lifts it to the floor when it would be lower.
Overage (emails beyond the monthly allowance) is usage, not price: it is
billed after the allowance month, never fills the floor, and never lowers it.
Every line is rounded once, half-up, to the currency's minor unit.
"""

from __future__ import annotations

from decimal import Decimal

from ledger.documents import Line
from ledger.money import Money
from ledger.plans import ContactsPlan
from ledger.renewal import RenewalPeriod
from ledger.subscriptions import PERIOD_LABELS, AllowanceMonth, SubscriptionQuote, apply_floor


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
