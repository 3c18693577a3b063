"""What opening an account checks and how its stream is named, whatever its billing model."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from ledger.errors import InvalidAmount, PlanNotAllowed
from ledger.money import check_currency
from ledger.periods import check_aware, check_timezone
from ledger.plans import ContactsPlan, EmailPlan

ACCOUNT_NAMESPACE = uuid.UUID("6f1c8d1e-4b7a-5c51-9a57-2d0e6b7f0a11")


def account_uuid(account_id: str) -> uuid.UUID:
    """Aggregate ids derive from the upstream id, so a replayed opening hits the same stream."""
    return uuid.uuid5(ACCOUNT_NAMESPACE, f"account:{account_id}")


def check_opening(
    plan: EmailPlan | ContactsPlan,
    currency: str,
    timezone: str,
    tax_rate: Decimal,
    opened_at: datetime,
) -> None:
    """What both billing models refuse at opening, before their own terms."""
    check_currency(currency)
    check_timezone(timezone)
    check_aware(opened_at)
    check_plan_currency(plan, currency)
    check_tax_rate(tax_rate)


def check_plan_currency(plan: EmailPlan | ContactsPlan, currency: str) -> None:
    if plan.currency != currency:
        raise PlanNotAllowed(
            f"plan {plan.id!r} is priced in {plan.currency}, the account in {currency}"
        )


def check_tax_rate(tax_rate: Decimal) -> None:
    """A rate of 1 or more would tax more than the amount itself; a negative one is a refund."""
    if not Decimal(0) <= tax_rate < Decimal(1):
        raise InvalidAmount(f"tax rate must be in [0, 1), got {tax_rate}")
