"""What the ledger must show after the stream, by plain arithmetic on the facts.

Deliberately not the ledger's pricing code: the plan terms are copied here by
hand from ``plans/email.toml`` and priced with a few lines of ``Decimal``
arithmetic, half-up to the cent once per document line (docs/rounding.md).

Per email account and month (in the account's time zone): platform and
custom-SMTP emails, the included ones, the charged ones, the usage amount
(graduated: each tier's emails at its price, one line per tier; volume: every
charged email at the price of the tier the month's total reaches) and the fee
(October: the opening plan's; November: the plan in force after the change on
October 31st); the document of each month (subtotal, tax on it, total); the
balance after ``close-periods`` (credits - documents - December's fee, which
the close of November debits when it opens December). Per contacts account:
billable contacts at the end (each contact's highest version decides). Per
account: the distinct status events, in order.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from tests.chaos.stream import Stream

CENT = Decimal("0.01")

#: plan -> (monthly fee, included emails, mode, [(up_to or None, unit price)]): plans/email.toml
TERMS: dict[str, tuple[Decimal, int, str, list[tuple[int | None, Decimal]]]] = {
    "email-starter": (
        Decimal("10.00"),
        1000,
        "graduated",
        [(10000, Decimal("0.0010")), (100000, Decimal("0.0008")), (None, Decimal("0.0005"))],
    ),
    "email-volume": (
        Decimal("25.00"),
        5000,
        "volume",
        [(20000, Decimal("0.0009")), (200000, Decimal("0.0006")), (None, Decimal("0.00035"))],
    ),
    "email-usd": (
        Decimal("12.00"),
        1000,
        "graduated",
        [(10000, Decimal("0.0012")), (None, Decimal("0.0009"))],
    ),
}


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def usage_lines(plan: str, platform: int) -> list[Decimal]:
    """The rounded usage lines of a month with ``platform`` emails on one plan."""
    _, included, mode, tiers = TERMS[plan]
    if platform <= included:
        return []
    if mode == "volume":
        price = next(p for up_to, p in tiers if up_to is None or platform <= up_to)
        return [cents((platform - included) * price)]
    lines = []
    lower = 0
    for up_to, price in tiers:
        upper = platform if up_to is None else min(platform, up_to)
        emails = upper - max(lower, included)
        if emails > 0:
            lines.append(cents(emails * price))
        if up_to is None or platform <= up_to:
            break
        lower = up_to
    return lines


@dataclass
class Month:
    platform: int = 0
    custom_smtp: int = 0


@dataclass
class Expected:
    usage: dict[tuple[str, str], dict[str, str | int]] = field(default_factory=dict)
    documents: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    balances: dict[str, str] = field(default_factory=dict)
    contacts: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, list[str]] = field(default_factory=dict)
    emails: int = 0


def expect(stream: Stream) -> Expected:
    out = Expected()
    months: dict[tuple[str, str], Month] = defaultdict(Month)
    credits: dict[str, Decimal] = defaultdict(Decimal)
    latest: dict[tuple[str, str], tuple[int, bool]] = {}
    by_id = {a.id: a for a in stream.accounts}
    for fact in stream.facts:
        account = by_id[fact.account]
        if fact.type == "email.sent":
            at = fact.time.astimezone(ZoneInfo(account.timezone))
            month = months[(account.id, f"{at.year}-{at.month:02d}")]
            if fact.data["route"] == "platform":
                month.platform += 1
            else:
                month.custom_smtp += 1
            out.emails += 1
        elif fact.type == "account.credit-purchased":
            credits[account.id] += Decimal(fact.data["amount"])
        elif fact.type in {"contact.changed", "contact.deleted"}:
            key = (account.id, fact.data["contact_id"])
            billable = fact.type == "contact.changed" and bool(
                fact.data["email"]
                or fact.data["phone"]
                or fact.data["user_id"]
                or fact.data["chat_replied"]
                or fact.data["web_push"]
            )
            version = int(fact.data["version"])
            if key not in latest or latest[key][0] < version:
                latest[key] = (version, billable)
    for account in stream.accounts:
        if account.is_contacts:
            out.contacts[account.id] = sum(
                1
                for (owner, _), (_, billable) in latest.items()
                if owner == account.id and billable
            )
            out.statuses[account.id] = []
            continue
        later = account.new_plan or account.plan
        spent = Decimal(0)
        for month_name, plan in (("2026-10", account.plan), ("2026-11", later)):
            usage = months[(account.id, month_name)]
            fee, included, _, _ = TERMS[plan]
            lines = usage_lines(plan, usage.platform)
            out.usage[(account.id, month_name)] = {
                "platform_emails": usage.platform,
                "custom_smtp_emails": usage.custom_smtp,
                "included_emails": min(usage.platform, included),
                "charged_emails": max(usage.platform - included, 0),
                "usage_amount": str(sum(lines, Decimal("0.00"))),
                "fee": str(fee),
            }
            subtotal = fee + sum(lines, Decimal(0))
            tax = cents(subtotal * Decimal(account.tax_rate))
            out.documents[(account.id, month_name)] = {
                "subtotal": str(subtotal),
                "tax": str(tax),
                "total": str(subtotal + tax),
            }
            spent += subtotal + tax
        december_fee = TERMS[later][0]
        out.balances[account.id] = str(cents(credits[account.id] - spent - december_fee))
        out.statuses[account.id] = (
            ["account.sending-blocked", "account.sending-unblocked"]
            if account.payment_mode == "prepaid"
            else []
        )
    return out
