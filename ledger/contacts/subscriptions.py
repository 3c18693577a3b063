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
  :func:`ledger.contacts.renewal.allowance_months`); platform emails beyond it cost
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

from ledger.contacts.renewal import BillingPeriod, RenewalPeriod, months_in
from ledger.errors import LedgerError
from ledger.plans import ContactsPlan

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


PERIOD_LABELS: dict[BillingPeriod, str] = {
    "month": "monthly",
    "quarter": "quarterly",
    "half_year": "half-yearly",
    "year": "yearly",
}


@dataclass(frozen=True, slots=True)
class Subscription:
    """The terms an account is billed on, from the allowance month it started.

    Months are counted from the account's anchor (the local date it opened);
    period ``n`` of this subscription starts ``start_month + n * months``
    months after the anchor, so a plan change never moves the renewal day.
    ``floor`` is the first invoice's subscription amount (rounded, before tax),
    unset until this subscription's first period is priced.
    """

    number: int
    plan: ContactsPlan
    products: tuple[str, ...]
    period: BillingPeriod
    start_month: int
    periods_priced: int = 0
    floor: Decimal | None = None

    @property
    def months(self) -> int:
        return months_in(self.period)

    @property
    def next_renewal_month(self) -> int:
        """The allowance month at whose start the next period is priced."""
        return self.start_month + self.periods_priced * self.months

    def same_terms(self, plan: ContactsPlan, products: tuple[str, ...], period: str) -> bool:
        # Products are a choice, not a sequence: the same ones reordered change nothing.
        return self.plan == plan and set(self.products) == set(products) and self.period == period


@dataclass(frozen=True, slots=True)
class AllowanceMonth:
    """Emails of one allowance month and what of them was billed.

    ``allowance`` and ``unit_price`` are set when the period holding the month
    is priced (``contacts`` is the count they came from); ``billed`` is how
    many overage emails documents already charged, so emails reported late
    are charged for exactly what is left.
    """

    index: int
    period: RenewalPeriod
    platform: int = 0
    custom_smtp: int = 0
    contacts: int | None = None
    allowance: int | None = None
    unit_price: Decimal | None = None
    billed: int = 0

    @property
    def overage(self) -> int:
        """Platform emails beyond the allowance (all of them if no period covered the month)."""
        return max(0, self.platform - (self.allowance or 0))

    @property
    def unbilled(self) -> int:
        return self.overage - self.billed
