"""Accounts, counters and checks shared by the contacts-account unit tests (not a test module).


Every expected amount below is worked out by hand in a comment from the plans
in ``plans/contacts.toml``:

- contacts-basic: tiers <=500 19.00, <=1,000 29.00, <=2,500 49.00, <=10,000 99.00,
  above 99.00 + 8.00 per 1,000 started; products automation 15.00, chat 10.00,
  web-push 5.00; discounts quarter 5%, half-year 10%, year 15%; 4 emails per
  contact; overage 0.0010 per email.
- contacts-pro: tiers <=1,000 49.00, <=5,000 99.00, above 99.00 + 12.00 per
  1,000 started; products as basic plus sms 20.00; same discounts; overage 0.0008.
- PRO6 (written out below): contacts-pro with 6 emails per contact, so an
  allowance shows which plan priced it.

A renewal instant, once priced, is never counted again: a contact change
reported late counts from just after the latest renewal priced, and only a
plan change dated at or before it replaces the unpaid renewal proforma.

Europe/Amsterdam is UTC+1 in winter and UTC+2 from the last Sunday of March
(2027-03-28, 2028-03-26) to the last Sunday of October (2027-10-31): local
midnight is 23:00Z or 22:00Z the day before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from unit_builders import numbers, utc

from commands.models import ContactChangeItem, Origin, SentEmailItem
from ledger.contacts.account import (
    ContactsAccount,
)
from ledger.contacts.billable import ContactState
from ledger.contacts.renewal import BillingPeriod, RenewalPeriod
from ledger.documents import Document
from ledger.plans import Catalogue, ContactsPlan

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = Catalogue.load(ROOT / "plans")
BASIC = CATALOGUE.contacts_plan("contacts-basic")
PRO = CATALOGUE.contacts_plan("contacts-pro")
#: Pro with 6 emails per contact, so an allowance shows which plan priced it.
PRO6 = ContactsPlan.model_validate(
    PRO.model_dump() | {"id": "contacts-pro-6", "name": "Contacts Pro 6", "emails_per_contact": 6}
)
AMS = "Europe/Amsterdam"
GRACE = timedelta(hours=6)
MICRO = timedelta(microseconds=1)
ORIGIN = Origin("test", "event-1")
ACCOUNT = "acc-7"

# Month lengths written out by hand (not from the calendar module).
COMMON = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
LEAP = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
MONTH_DAYS = {2027: COMMON, 2028: LEAP, 2029: COMMON, 2030: COMMON}
MONTHS = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}


# ---------------------------------------------------------------- builders


def open_account(
    *,
    plan: Any = BASIC,
    products: tuple[str, ...] = (),
    period: BillingPeriod = "month",
    tz: str = "UTC",
    tax_rate: str = "0",
    opened_at: datetime | None = None,
) -> ContactsAccount:
    return ContactsAccount.open(
        account_id=ACCOUNT,
        plan=plan,
        products=products,
        billing_period=period,
        currency="EUR",
        timezone=tz,
        tax_rate=Decimal(tax_rate),
        opened_at=opened_at or utc(2027, 1, 15, 10),
    )


@dataclass
class Counter:
    """``count_contacts`` stand-in: billable contacts per instant, and what was asked.

    An instant that is not in ``counts`` fails the test unless ``default`` is set,
    so an unexpected question is caught too.
    """

    counts: dict[datetime, int] = field(default_factory=dict)
    default: int | None = None
    asked: list[datetime] = field(default_factory=list)

    def __call__(self, at: datetime) -> int:
        self.asked.append(at)
        if at in self.counts:
            return self.counts[at]
        if self.default is None:
            raise AssertionError(f"count_contacts asked for an unexpected instant {at}")
        return self.default


def emails(
    count: int, at: datetime, route: Literal["platform", "custom_smtp"] = "platform"
) -> list[SentEmailItem]:
    return [SentEmailItem(at, route, ORIGIN)] * count


def change(state: ContactState, at: datetime) -> ContactChangeItem:
    return ContactChangeItem(state, at, ORIGIN)


def lines(doc: Document) -> list[tuple[str, int, Decimal | None, Decimal]]:
    return [(line.kind, line.quantity, line.unit_price, line.amount.amount) for line in doc.lines]


def totals(doc: Document) -> tuple[Decimal, Decimal, Decimal]:
    return doc.subtotal.amount, doc.tax.amount, doc.total.amount


def period(start: str, end: str) -> RenewalPeriod:
    return RenewalPeriod(date.fromisoformat(start), date.fromisoformat(end))


def close(account: ContactsAccount, as_of: datetime, counter: Counter) -> list[Document]:
    """``close_periods`` with every document and the aggregate checked afterwards."""
    documents = account.close_periods(as_of, GRACE, counter, numbers())
    for document in documents:
        document.check_invariants()
        assert document.kind == "proforma"
        assert document.account_id == ACCOUNT
        assert document.currency == "EUR"
        assert document.due_on == document.issued_on  # payable on receipt
        assert document.accrued.amount == 0
    account.check_invariants()
    return documents


def state(account: ContactsAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "version": account.version,
        "account_id": account.account_id,
        "subscription": account.subscription,
        "pending": account.pending,
        "pending_at": account.pending_at,
        "counted_through": account.counted_through,
        "replaced": account.replaced,
        "currency": account.currency,
        "timezone": account.timezone,
        "tax_rate": account.tax_rate,
        "opened_at": account.opened_at,
        "anchor": account.anchor,
        "billable": account.billable,
        "months": account.months,
        "documented_months": account.documented_months,
        "late_months": account.late_months,
        "proforma_count": account.proforma_count,
        "open_proformas": account.open_proformas,
        "invoices": account.invoices,
        "closed_at": account.closed_at,
        "receivables": account.receivables,
        "credit": account.credit,
        "collections": account.collections,
        "dunning_state": account.dunning_state,
        "delinquent": account.delinquent,
        "notices": account.notices,
    }


def replayed(events: Sequence[Any]) -> ContactsAccount:
    copy: Any = None
    for event in events:
        copy = event.mutate(copy)
    assert isinstance(copy, ContactsAccount)
    return copy


def assert_replays(account: ContactsAccount) -> list[Any]:
    """Every pending event replayed into a fresh aggregate gives the same state."""
    events = list(account.collect_events())
    copy = replayed(events)
    copy.check_invariants()
    assert state(copy) == state(account)
    return events


def late_months(account: ContactsAccount) -> tuple[int, ...]:
    return account.late_months


def days_in(year: int, month: int) -> int:
    return MONTH_DAYS[year][month - 1]


AMS_OPENED = utc(2027, 3, 10, 9, 30)
FEB_15 = utc(2027, 2, 15)
MAR_15 = utc(2027, 3, 15)
APR_15 = utc(2027, 4, 15)
MAY_15 = utc(2027, 5, 15)
OPENED = utc(2027, 1, 15, 10)


def event_names(events: Sequence[Any]) -> list[str]:
    return [type(e).__name__ for e in events]
