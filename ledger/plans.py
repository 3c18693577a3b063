"""Plan terms: prices are data, validated once at the boundary.

A plan catalogue is a folder of TOML files (``plans/*.toml``), each holding one
or more ``[plans.<id>]`` tables; one file may hold the ``[dunning]`` table, the
collection and dunning policy (``ledger.payments.policy``). The models here are
frozen: an account's events carry the terms they were priced with, so a
catalogue edit never rewrites the past.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ledger.contacts.renewal import BillingPeriod
from ledger.errors import LedgerError, PlanNotAllowed, UnknownPlan
from ledger.money import MINOR_UNITS
from ledger.payments.policy import DunningPolicy

TierMode = Literal["graduated", "volume"]


class Terms(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Tier(Terms):
    """Emails whose position in the month's volume is at most ``up_to``
    (inclusive; ``None`` means no upper bound) cost ``unit_price`` each."""

    up_to: int | None = Field(default=None, gt=0)
    unit_price: Decimal = Field(ge=0)


class EmailPlan(Terms):
    """The email API's pay-as-you-go / postpay model.

    Positions ``1..included_emails`` of a month are free. Beyond that:
    ``graduated`` prices each email by the tier its own position falls in;
    ``volume`` prices every non-free email of the month at the tier the
    month's total volume reaches.
    """

    kind: Literal["email"] = "email"
    id: str
    name: str
    currency: str
    monthly_fee: Decimal = Field(ge=0)
    included_emails: int = Field(default=0, ge=0)
    tier_mode: TierMode = "graduated"
    tiers: tuple[Tier, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> EmailPlan:
        if self.currency not in MINOR_UNITS:
            raise ValueError(f"unknown currency {self.currency!r}")
        bounds = [t.up_to for t in self.tiers]
        if bounds[-1] is not None:
            raise ValueError("the last tier must be open-ended (no up_to)")
        if any(b is None for b in bounds[:-1]):
            raise ValueError("only the last tier may be open-ended")
        finite = [b for b in bounds[:-1] if b is not None]
        if finite != sorted(set(finite)):
            raise ValueError("tier bounds must strictly increase")
        return self


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


Plan = Annotated[EmailPlan | ContactsPlan, Field(discriminator="kind")]


class _CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plans: dict[str, dict[str, object]] = Field(default_factory=dict)
    dunning: DunningPolicy | None = None


class InvalidCatalogue(LedgerError):
    pass


_PLAN = TypeAdapter[EmailPlan | ContactsPlan](Plan)


class Catalogue:
    """The plans an account may be opened on or moved to, by id.

    A plan's ``kind`` chooses the billing model: ``email`` (the default, seed
    000) or ``contacts`` (seed 002).
    """

    def __init__(
        self, plans: dict[str, EmailPlan | ContactsPlan], dunning: DunningPolicy | None = None
    ) -> None:
        self._plans = dict(plans)
        #: None when no file has a ``[dunning]`` table (a catalogue without payments).
        self.dunning = dunning

    @classmethod
    def load(cls, folder: Path) -> Catalogue:
        plans: dict[str, EmailPlan | ContactsPlan] = {}
        dunning: DunningPolicy | None = None
        files = sorted(folder.glob("*.toml"))
        if not files:
            raise InvalidCatalogue(f"no plan files (*.toml) in {folder}")
        for path in files:
            try:
                raw = _CatalogueFile.model_validate(tomllib.loads(path.read_text()))
                if raw.dunning is not None:
                    if dunning is not None:
                        raise InvalidCatalogue(f"{path.name}: a second [dunning] table")
                    dunning = raw.dunning
                for plan_id, table in raw.plans.items():
                    if plan_id in plans:
                        raise InvalidCatalogue(f"{path.name}: plan {plan_id!r} defined twice")
                    plans[plan_id] = _PLAN.validate_python(
                        {"kind": "email", "id": plan_id, **table}
                    )
            except (tomllib.TOMLDecodeError, ValidationError) as exc:
                first = str(exc).splitlines()
                raise InvalidCatalogue(f"{path.name}: {' '.join(first[:3])}") from exc
        return cls(plans, dunning)

    def get(self, plan_id: str) -> EmailPlan | ContactsPlan:
        try:
            return self._plans[plan_id]
        except KeyError:
            raise UnknownPlan(plan_id) from None

    def email_plan(self, plan_id: str) -> EmailPlan:
        plan = self.get(plan_id)
        if not isinstance(plan, EmailPlan):
            raise PlanNotAllowed(f"plan {plan_id!r} bills by contacts, not by emails sent")
        return plan

    def contacts_plan(self, plan_id: str) -> ContactsPlan:
        plan = self.get(plan_id)
        if not isinstance(plan, ContactsPlan):
            raise PlanNotAllowed(f"plan {plan_id!r} bills by emails sent, not by contacts")
        return plan

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._plans.values())

    def __len__(self) -> int:
        return len(self._plans)
