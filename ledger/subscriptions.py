"""Contacts-based subscriptions (seed 002): plan terms and pure pricing.

The price of one billing period, computed in advance at each renewal from the
billable contacts counted then::

    (contacts tier price + sum of chosen products) * months in period * (1 - discount)

- **Contact tiers** are bands of the billable-contact count. ``up_to`` is
  inclusive; each bounded band has a flat ``monthly_price``. The last band is
  open-ended: its ``monthly_price`` plus ``per_thousand_above`` for every
  1,000 contacts *started* above the previous band's bound (with tiers up to
  10,000 at 99.00 and then 99.00 + 8.00 per 1,000: 10,001 and 11,000
  contacts cost 107.00, 11,001 cost 115.00). A plan with one open band is a
  plain "per 1,000 started" price. Zero contacts pay the first band.
- **Products** are add-ons with a flat monthly price each.
- **Period discounts** are a fraction per billing period (``month`` is always
  0); a period missing from the plan has no discount.
- **Emails included** (:func:`allowance`): ``emails_per_contact`` (4) times the
  contacts counted at the last renewal, per allowance month (see
  :func:`ledger.renewal.allowance_months`); platform emails beyond it cost
  ``overage_unit_price`` each (:func:`overage`). Custom SMTP never counts.
- **Minimum price** (:func:`apply_floor`): the first invoice's subscription
  charge is the floor; a later period's subscription charge is lifted to it
  by a visible adjustment line. Overage is usage, not price: it is charged on
  top and never fills the floor. A plan or billing-period change starts a new
  subscription, whose first invoice sets a new floor.

Amounts are exact Decimals. Rounding is not done here: document lines round
half-up to the currency's minor unit (:mod:`ledger.money`), and the floor is
compared on those rounded amounts, so its adjustment is in minor units too.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from ledger.errors import LedgerError
from ledger.money import MINOR_UNITS
from ledger.plans import Terms
from ledger.renewal import BillingPeriod, months_in

#: The open-ended tier is priced per this many contacts started.
CONTACT_BLOCK = 1000


class SubscriptionError(LedgerError):
    """A subscription that cannot be priced as asked."""


class UnknownProduct(SubscriptionError):
    def __init__(self, plan_id: str, product: str) -> None:
        super().__init__(f"plan {plan_id!r} has no product {product!r}")


class DuplicateProduct(SubscriptionError):
    def __init__(self, product: str) -> None:
        super().__init__(f"product {product!r} is chosen more than once")


class InvalidCount(SubscriptionError):
    def __init__(self, what: str, value: int) -> None:
        super().__init__(f"{what} cannot be negative, got {value}")


class ContactTier(Terms):
    """Up to ``up_to`` billable contacts (inclusive; None = open-ended) for a monthly price."""

    up_to: int | None = Field(default=None, gt=0)
    monthly_price: Decimal = Field(ge=0)
    per_thousand_above: Decimal = Field(default=Decimal(0), ge=0)


class ContactsPlan(Terms):
    """The marketing platform's model: contacts + products, per billing period."""

    kind: Literal["contacts"] = "contacts"
    id: str
    name: str
    currency: str
    tiers: tuple[ContactTier, ...] = Field(min_length=1)
    products: dict[str, Decimal] = Field(default_factory=dict)
    period_discounts: dict[BillingPeriod, Decimal] = Field(default_factory=dict)
    emails_per_contact: int = Field(default=4, ge=0)
    overage_unit_price: Decimal = Field(ge=0)

    def __hash__(self) -> int:
        # Like EmailPlan, a frozen plan is a hashable value; the dict fields
        # would make pydantic's field-wise hash fail, so hash the canonical JSON.
        return hash(self.model_dump_json())

    @model_validator(mode="after")
    def _check(self) -> ContactsPlan:
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"unknown currency {self.currency!r}")
        bounds = [t.up_to for t in self.tiers]
        if bounds[-1] is not None:
            raise ValueError("the last contact tier must be open-ended (no up_to)")
        finite = [b for b in bounds[:-1] if b is not None]
        if len(finite) != len(bounds) - 1:
            raise ValueError("only the last contact tier may be open-ended")
        if finite != sorted(set(finite)):
            raise ValueError("contact tier bounds must strictly increase")
        prices = [t.monthly_price for t in self.tiers]
        if prices != sorted(prices):
            # More contacts never cost less: a falling price is a typo in the catalogue.
            raise ValueError("contact tier prices must not decrease")
        if any(t.per_thousand_above for t in self.tiers[:-1]):
            raise ValueError("only the open-ended tier has a per_thousand_above price")
        for product, price in self.products.items():
            if not product.strip() or price < 0:
                raise ValueError(f"product {product!r} needs an id and a price >= 0")
        for period, rate in self.period_discounts.items():
            if not Decimal(0) <= rate < Decimal(1):
                raise ValueError(f"discount for {period} must be in [0, 1), got {rate}")
        if self.period_discounts.get("month", Decimal(0)) != 0:
            raise ValueError("a monthly subscription has no period discount")
        return self


def _check_count(what: str, value: int) -> int:
    if value < 0:
        raise InvalidCount(what, value)
    return value


def tier_at(plan: ContactsPlan, contacts: int) -> int:
    """1-based index of the tier that holds ``contacts``."""
    _check_count("contacts", contacts)
    for index, tier in enumerate(plan.tiers, start=1):
        if tier.up_to is None or contacts <= tier.up_to:
            return index
    raise AssertionError("the last tier is open-ended")  # guaranteed by ContactsPlan


def contacts_price(plan: ContactsPlan, contacts: int) -> Decimal:
    """Monthly price for ``contacts`` billable contacts."""
    index = tier_at(plan, contacts)
    tier = plan.tiers[index - 1]
    if tier.up_to is not None:
        return tier.monthly_price
    previous = plan.tiers[index - 2].up_to if index > 1 else None
    below = previous or 0
    blocks = -(-(contacts - below) // CONTACT_BLOCK)  # ceiling: a started block counts
    return tier.monthly_price + max(0, blocks) * tier.per_thousand_above


def product_prices(
    plan: ContactsPlan, products: tuple[str, ...]
) -> tuple[tuple[str, Decimal], ...]:
    """Each chosen product with its monthly price, in the order chosen."""
    if len(set(products)) != len(products):
        duplicate = next(p for p in products if products.count(p) > 1)
        raise DuplicateProduct(duplicate)
    try:
        return tuple((product, plan.products[product]) for product in products)
    except KeyError as exc:
        raise UnknownProduct(plan.id, str(exc.args[0])) from None


def period_discount(plan: ContactsPlan, period: BillingPeriod) -> Decimal:
    months_in(period)  # refuse an unknown period rather than price it undiscounted
    return plan.period_discounts.get(period, Decimal(0))


@dataclass(frozen=True, slots=True)
class SubscriptionQuote:
    """One period's price with its parts, so a document can show each as a line."""

    plan_id: str
    period: BillingPeriod
    months: int
    contacts: int
    tier: int
    contacts_monthly: Decimal
    products: tuple[tuple[str, Decimal], ...]
    discount_rate: Decimal

    @property
    def monthly(self) -> Decimal:
        return self.contacts_monthly + sum((price for _, price in self.products), Decimal(0))

    @property
    def gross(self) -> Decimal:
        return self.monthly * self.months

    @property
    def discount(self) -> Decimal:
        return self.gross * self.discount_rate

    @property
    def total(self) -> Decimal:
        return self.gross - self.discount


def quote(
    plan: ContactsPlan, contacts: int, products: tuple[str, ...], period: BillingPeriod
) -> SubscriptionQuote:
    return SubscriptionQuote(
        plan_id=plan.id,
        period=period,
        months=months_in(period),
        contacts=contacts,
        tier=tier_at(plan, contacts),
        contacts_monthly=contacts_price(plan, contacts),
        products=product_prices(plan, products),
        discount_rate=period_discount(plan, period),
    )


def subscription_price(
    plan: ContactsPlan, contacts: int, products: tuple[str, ...], period: BillingPeriod
) -> Decimal:
    """Exact price of one period: (tier + products) * months * (1 - discount)."""
    return quote(plan, contacts, products, period).total


def allowance(contacts: int, plan: ContactsPlan) -> int:
    """Platform emails included per allowance month for ``contacts`` counted at renewal."""
    return plan.emails_per_contact * _check_count("contacts", contacts)


def overage(plan: ContactsPlan, sent: int, allowance: int) -> tuple[int, Decimal]:
    """Emails beyond the allowance in one allowance month, and their exact price."""
    _check_count("emails sent", sent)
    _check_count("allowance", allowance)
    count = max(0, sent - allowance)
    return count, plan.overage_unit_price * count


def apply_floor(amount: Decimal, floor: Decimal | None) -> tuple[Decimal, Decimal]:
    """The amount lifted to the floor, and the adjustment that lifts it (>= 0).

    ``floor`` is None for the subscription's first invoice, which sets the
    floor instead of meeting one. Pass rounded amounts before tax (the sum of
    the subscription's document lines) so the adjustment line is in minor units.
    """
    if floor is None:
        return amount, Decimal(0)
    if floor < 0:
        raise SubscriptionError(f"a minimum price cannot be negative, got {floor}")
    adjustment = max(Decimal(0), floor - amount)
    return amount + adjustment, adjustment
