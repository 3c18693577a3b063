"""Email pricing: pure functions over plan data.

Everything is expressed with *positions*: the n-th platform email an account
sends in a month has position n. A batch of k emails arriving when the month
already holds ``start`` emails covers positions ``start+1 .. start+k``, written
``(start, end]``. Pricing a batch therefore needs no memory beyond ``start``,
which is what lets one aggregate event price thousands of emails exactly.

- Positions ``1 .. included_emails`` are free.
- ``graduated``: each email pays the unit price of the tier its own position
  falls in. The sum over batches equals the price of the month in one go.
- ``volume``: every non-free email of the month pays the unit price of the
  tier the month's *total* reaches. While the month is open the final total is
  unknown, so each email is charged *as sent*: at the tier the month reached
  with it (its own position), exactly as a graduated plan would charge it;
  the period close trues the month up to the final tier (:func:`month_price`).
  Because unit prices fall as volume grows, the true-up is a discount. Note
  the classic volume "cliff": crossing a tier bound can lower a month's total.

What a batch is charged depends only on its positions, never on where the
batches were cut: charges of ``(a, b]`` and ``(b, c]`` add up to those of
``(a, c]`` (:func:`charges_as_sent`), so the balance and the usage read model
are the same however the stream was batched.

Amounts here are exact (unrounded) Decimals; rounding happens on document
lines only (:mod:`ledger.documents`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ledger.plans import EmailPlan


@dataclass(frozen=True, slots=True)
class Charge:
    """``count`` emails charged at ``unit_price`` under tier ``tier`` (1-based) of a plan."""

    plan_id: str
    tier: int
    unit_price: Decimal
    count: int

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.count

    @property
    def key(self) -> tuple[str, int, Decimal]:
        return (self.plan_id, self.tier, self.unit_price)


def tier_bounds(plan: EmailPlan) -> list[tuple[int, int | None]]:
    """Each tier as its half-open position range ``(low, high]``; high None = unbounded."""
    bounds: list[tuple[int, int | None]] = []
    low = 0
    for tier in plan.tiers:
        bounds.append((low, tier.up_to))
        low = tier.up_to or low
    return bounds


def tier_at(plan: EmailPlan, position: int) -> int:
    """1-based index of the tier that holds ``position`` (position >= 1)."""
    for index, (_, high) in enumerate(tier_bounds(plan), start=1):
        if high is None or position <= high:
            return index
    raise AssertionError("the last tier is open-ended")  # guaranteed by EmailPlan


def unit_price_at(plan: EmailPlan, position: int) -> Decimal:
    return plan.tiers[tier_at(plan, position) - 1].unit_price


def free_count(plan: EmailPlan, start: int, end: int) -> int:
    """How many of the positions ``(start, end]`` are within the included emails."""
    return max(0, min(end, plan.included_emails) - start)


def graduated_charges(plan: EmailPlan, start: int, end: int) -> tuple[Charge, ...]:
    """Charges for positions ``(start, end]``, each email at its own tier's price."""
    first_paid = max(start, plan.included_emails)
    charges: list[Charge] = []
    for index, (low, high) in enumerate(tier_bounds(plan), start=1):
        lo = max(low, first_paid)
        hi = end if high is None else min(high, end)
        if hi > lo:
            price = plan.tiers[index - 1].unit_price
            charges.append(Charge(plan.id, index, price, hi - lo))
    return tuple(charges)


def volume_charges(plan: EmailPlan, start: int, end: int, month_volume: int) -> tuple[Charge, ...]:
    """Non-free positions ``(start, end]`` at the tier that ``month_volume`` reaches."""
    paid = (end - start) - free_count(plan, start, end)
    if paid <= 0:
        return ()
    tier = tier_at(plan, month_volume)
    return (Charge(plan.id, tier, plan.tiers[tier - 1].unit_price, paid),)


def charges_as_sent(plan: EmailPlan, start: int, end: int) -> tuple[Charge, ...]:
    """What positions ``(start, end]`` are charged when they are recorded: each email at
    the tier its own position reaches (final for graduated plans; for volume plans the
    tier the month had reached with it, trued up at the close).

    Additive over any split of the positions, so it does not depend on batching.
    """
    return graduated_charges(plan, start, end)


def final_charges(plan: EmailPlan, start: int, end: int, month_volume: int) -> tuple[Charge, ...]:
    """What positions ``(start, end]`` finally cost once the month's volume is known."""
    if plan.tier_mode == "graduated":
        return graduated_charges(plan, start, end)
    return volume_charges(plan, start, end, month_volume)


def month_price(plan: EmailPlan, volume: int) -> Decimal:
    """Exact price of a whole month of ``volume`` platform emails under one plan."""
    return total(final_charges(plan, 0, volume, volume))


def next_email_price(plan: EmailPlan, volume: int) -> Decimal:
    """What the next email would be charged now: what a prepaid balance must cover."""
    if volume + 1 <= plan.included_emails:
        return Decimal(0)
    return unit_price_at(plan, volume + 1)


def total(charges: tuple[Charge, ...] | list[Charge]) -> Decimal:
    return sum((c.amount for c in charges), Decimal(0))


def merge(existing: tuple[Charge, ...], new: tuple[Charge, ...]) -> tuple[Charge, ...]:
    """Add charges together by (plan, tier, unit price), keeping first-seen order."""
    merged: dict[tuple[str, int, Decimal], Charge] = {c.key: c for c in existing}
    for charge in new:
        seen = merged.get(charge.key)
        merged[charge.key] = (
            charge
            if seen is None
            else Charge(seen.plan_id, seen.tier, seen.unit_price, seen.count + charge.count)
        )
    return tuple(merged.values())
