"""What each allowance-month boundary of a contacts account bills (seed 002), as pure rules.

Every boundary between allowance months is billed once, in order:

- the month that ended is charged for its platform emails beyond its
  allowance (4 x the contacts counted at the renewal that priced it);
- when the boundary is a renewal, the next period of the subscription is
  priced in advance from the billable contacts counted at that instant, and
  the month's overage rides on the same proforma; otherwise overage, if
  any, gets a proforma of its own. Overage is thus billed at the end of the
  month it happened in, for every billing period length.

:meth:`ledger.contacts.account.ContactsAccount.close_periods` walks the
boundaries in order and asks these functions what to do at each; the
documents are priced by :class:`ledger.contacts.allowance_months.AllowanceMonths`
and the aggregate only records the events. Unit tested in
``tests/unit/test_billing_cycle.py`` with plain values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from ledger.contacts.proformas import floor_line, subscription_lines
from ledger.contacts.renewal import BillingPeriod, RenewalPeriod
from ledger.contacts.subscriptions import Subscription, quote
from ledger.documents import Line
from ledger.plans import ContactsPlan

#: At a boundary: price the next period (the month's overage rides on it), bill the
#: month's overage on a proforma of its own, or close the month with nothing to bill.
BoundaryBill = Literal["renewal", "overage", "nothing"]


def is_due(boundary: datetime, grace: timedelta, as_of: datetime) -> bool:
    """A boundary is billed once it is ``grace`` old: late reports have had time to come."""
    return boundary + grace <= as_of


def boundary_bill(
    *,
    next_month: int,
    next_renewal_month: int,
    boundary: datetime,
    closed_at: datetime | None,
    usage: Sequence[Line],
) -> BoundaryBill:
    """What the boundary that starts allowance month ``next_month`` bills.

    A renewal when the subscription's next period starts there, unless the
    account closed before that instant; otherwise the month's overage, if it
    comes to anything once rounded (what rounds to 0.00 is carried on).
    """
    if next_month == next_renewal_month and (closed_at is None or closed_at >= boundary):
        return "renewal"
    if any(line.amount.amount for line in usage):
        return "overage"
    return "nothing"


def billing_stopped(
    *,
    closed_at: datetime | None,
    month_start: datetime,
    emails_from_then_on: bool,
    late: Sequence[Line],
) -> bool:
    """A closed account is billed only for what was sent up to its closing month (and
    reported late): once that is invoiced, its months stop. What is left below half
    a cent then is never invoiced."""
    if closed_at is None or month_start <= closed_at:
        return False
    if emails_from_then_on:
        return False
    return not any(line.amount.amount for line in late)


def terms_at(
    current: Subscription,
    pending: Subscription | None,
    pending_at: datetime | None,
    start_month: int,
    renewal: datetime,
) -> Subscription:
    """The subscription a renewal is priced with: a plan change dated at or before
    the renewal instant starts there; one dated after it waits for the next."""
    if pending is not None and pending_at is not None and pending_at <= renewal:
        return replace(pending, start_month=start_month)
    return current


def can_replace(
    *,
    pending_at: datetime,
    counted_at: datetime,
    documented_months: int,
    start_month: int,
) -> bool:
    """Whether a plan change replaces the unpaid renewal priced at ``counted_at``: only
    one dated at or before that instant, and while none of its months is billed."""
    return pending_at <= counted_at and documented_months <= start_month


def carried(unbilled: Mapping[int, int]) -> tuple[int, ...]:
    """Of the months just closed (index -> overage emails not billed yet), those whose
    overage is carried to the next document, where it adds up, in order."""
    return tuple(index for index in sorted(unbilled) if unbilled[index])


def priced_lines(
    terms: Subscription, period: RenewalPeriod, contacts: int, currency: str, *, sets_floor: bool
) -> list[Line]:
    """A period's subscription lines, lifted to the floor unless this price sets it."""
    priced = quote(terms.plan, contacts, terms.products, terms.period)
    lines = subscription_lines(terms.plan, priced, period, currency)
    lift = floor_line(lines, None if sets_floor else terms.floor, currency)
    return [*lines, lift] if lift else lines


def lines_total(lines: Sequence[Line]) -> Decimal:
    return sum((line.amount.amount for line in lines), Decimal(0))


def plan_change(
    current: Subscription,
    pending: Subscription | None,
    plan: ContactsPlan,
    products: tuple[str, ...],
    period: BillingPeriod,
) -> Literal["schedule", "cancel"] | None:
    """What asking for these terms does: schedule them for the next renewal, cancel the
    change scheduled (they are the terms in force), or nothing (in force, or scheduled
    already)."""
    in_force = current.same_terms(plan, products, period)
    if pending is None:
        return None if in_force else "schedule"
    if in_force:
        return "cancel"
    return None if pending.same_terms(plan, products, period) else "schedule"


def scheduled(
    current: Subscription,
    plan: ContactsPlan,
    products: tuple[str, ...],
    period: BillingPeriod,
    at: datetime,
    *,
    cancelled: bool,
) -> tuple[Subscription | None, datetime | None]:
    """The plan change waiting for a renewal, and its date: the next subscription, whose
    start month the renewal that prices it sets; none once the change is cancelled."""
    if cancelled:
        return None, None
    return Subscription(current.number + 1, plan, products, period, start_month=-1), at


def pending_after(
    pending: Subscription | None,
    pending_at: datetime | None,
    current: Subscription,
    priced: Subscription,
) -> tuple[Subscription | None, datetime | None]:
    """The plan change still waiting once ``priced`` is billed: none if that started it."""
    if priced.number != current.number:
        return None, None
    return pending, pending_at
