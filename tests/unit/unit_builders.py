"""Plans and small builders shared by the unit tests (not a test module).

The plans mirror ``plans/email.toml`` but are written out here so that the
expected values in the tests do not depend on the catalogue file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ledger.documents import Document, Line, assemble
from ledger.email_counts import Route
from ledger.money import Money
from ledger.periods import Month
from ledger.plans import EmailPlan, Tier


@dataclass(frozen=True, slots=True)
class SentEmail:
    """An email as the aggregates read it, without the message it came in."""

    sent_at: datetime
    route: Route


#: included 1000; positions 1001..10000 @0.0010, 10001..100000 @0.0008, 100001+ @0.0005
STARTER = EmailPlan(
    id="email-starter",
    name="Email Starter",
    currency="EUR",
    monthly_fee=Decimal("10.00"),
    included_emails=1000,
    tier_mode="graduated",
    tiers=(
        Tier(up_to=10000, unit_price=Decimal("0.0010")),
        Tier(up_to=100000, unit_price=Decimal("0.0008")),
        Tier(unit_price=Decimal("0.0005")),
    ),
)

#: included 5000; month total <= 20000 -> @0.0009, <= 200000 -> @0.0006, more -> @0.00035
VOLUME = EmailPlan(
    id="email-volume",
    name="Email Volume",
    currency="EUR",
    monthly_fee=Decimal("25.00"),
    included_emails=5000,
    tier_mode="volume",
    tiers=(
        Tier(up_to=20000, unit_price=Decimal("0.0009")),
        Tier(up_to=200000, unit_price=Decimal("0.0006")),
        Tier(unit_price=Decimal("0.00035")),
    ),
)

USD_STARTER = EmailPlan(
    id="email-usd",
    name="Email Starter (USD)",
    currency="USD",
    monthly_fee=Decimal("12.00"),
    included_emails=1000,
    tier_mode="graduated",
    tiers=(
        Tier(up_to=10000, unit_price=Decimal("0.0012")),
        Tier(unit_price=Decimal("0.0009")),
    ),
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def platform_emails(count: int, at: datetime) -> list[SentEmail]:
    return [SentEmail(at, "platform")] * count


def smtp_emails(count: int, at: datetime) -> list[SentEmail]:
    return [SentEmail(at, "custom_smtp")] * count


def numbers() -> Callable[[int], str]:
    """A stand-in for the gapless sequence: 'YYYY-000001', 'YYYY-000002', ..."""
    handed_out = 0

    def next_number(year: int) -> str:
        nonlocal handed_out
        handed_out += 1
        return f"{year:04d}-{handed_out:06d}"

    return next_number


def a_line(kind: str, quantity: int, amount: str = "0.00", description: str = "") -> Line:
    """A document line by its kind alone (the audits read kinds and quantities)."""
    return Line(kind, description or kind, quantity, None, Money.of(amount, "EUR"))  # type: ignore[arg-type]


def an_invoice(number: str, month: Month, *lines: Line) -> Document:
    """acme's postpaid invoice for ``month`` with these lines, totals worked out."""
    return assemble(
        number=number,
        kind="invoice",
        account_id="acme",
        period=month,
        issued_on=month.next().first_day,
        due_on=month.next().first_day + timedelta(days=14),
        currency="EUR",
        lines=list(lines),
        tax_rate=Decimal(0),
        accrued=sum((line.amount for line in lines), Money.zero("EUR")),
    )
