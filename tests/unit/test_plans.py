from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from unit_builders import STARTER, USD_STARTER, VOLUME

from ledger.errors import PlanNotAllowed, UnknownPlan
from ledger.plans import Catalogue, EmailPlan, InvalidCatalogue, Tier

CATALOGUE_DIR = Path(__file__).resolve().parents[2] / "plans"


def plan_kwargs(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "id": "p",
        "name": "P",
        "currency": "EUR",
        "monthly_fee": Decimal("1.00"),
        "included_emails": 0,
        "tier_mode": "graduated",
        "tiers": (Tier(up_to=10, unit_price=Decimal("0.01")), Tier(unit_price=Decimal("0.005"))),
    }
    kwargs.update(overrides)
    return kwargs


def test_example_catalogue_loads_the_email_and_contacts_plans_as_written() -> None:
    catalogue = Catalogue.load(CATALOGUE_DIR)
    assert len(catalogue) == 5
    assert catalogue.get("email-starter") == STARTER
    assert catalogue.get("email-volume") == VOLUME
    assert catalogue.get("email-usd") == USD_STARTER
    assert {plan.id for plan in catalogue} == {
        "email-starter",
        "email-volume",
        "email-usd",
        "contacts-basic",
        "contacts-pro",
    }
    basic = catalogue.contacts_plan("contacts-basic")
    assert basic.kind == "contacts"
    assert [(t.up_to, t.monthly_price) for t in basic.tiers] == [
        (500, Decimal("19.00")),
        (1000, Decimal("29.00")),
        (2500, Decimal("49.00")),
        (10000, Decimal("99.00")),
        (None, Decimal("99.00")),
    ]
    assert basic.tiers[-1].per_thousand_above == Decimal("8.00")
    assert basic.products == {
        "automation": Decimal("15.00"),
        "chat": Decimal("10.00"),
        "web-push": Decimal("5.00"),
    }
    assert basic.period_discounts == {
        "quarter": Decimal("0.05"),
        "half_year": Decimal("0.10"),
        "year": Decimal("0.15"),
    }
    assert basic.overage_unit_price == Decimal("0.0010")
    assert basic.emails_per_contact == 4


def test_a_plan_of_the_other_model_is_refused_by_kind() -> None:
    catalogue = Catalogue.load(CATALOGUE_DIR)
    with pytest.raises(PlanNotAllowed, match="bills by contacts"):
        catalogue.email_plan("contacts-basic")
    with pytest.raises(PlanNotAllowed, match="bills by emails"):
        catalogue.contacts_plan("email-starter")


def test_unknown_plan_id_is_refused() -> None:
    with pytest.raises(UnknownPlan):
        Catalogue.load(CATALOGUE_DIR).get("email-enterprise")


def test_plan_defaults_to_graduated_with_nothing_included() -> None:
    plan = EmailPlan(
        id="p",
        name="P",
        currency="EUR",
        monthly_fee=Decimal(0),
        tiers=(Tier(unit_price=Decimal(1)),),
    )
    assert plan.tier_mode == "graduated"
    assert plan.included_emails == 0
    assert plan.kind == "email"


def test_plans_are_frozen() -> None:
    with pytest.raises(ValidationError):
        STARTER.monthly_fee = Decimal("0")  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides",
    [
        {"tiers": (Tier(up_to=10, unit_price=Decimal("0.01")),)},  # last tier bounded
        {"tiers": ()},  # no tier at all
        {
            "tiers": (
                Tier(unit_price=Decimal("0.01")),
                Tier(unit_price=Decimal("0.02")),
            )
        },  # open-ended tier before the last
        {
            "tiers": (
                Tier(up_to=10, unit_price=Decimal("0.01")),
                Tier(up_to=10, unit_price=Decimal("0.01")),
                Tier(unit_price=Decimal("0.01")),
            )
        },  # bounds not strictly increasing
        {
            "tiers": (
                Tier(up_to=20, unit_price=Decimal("0.01")),
                Tier(up_to=10, unit_price=Decimal("0.01")),
                Tier(unit_price=Decimal("0.01")),
            )
        },  # bounds decreasing
        {"currency": "XYZ"},
        {"monthly_fee": Decimal("-1")},
        {"included_emails": -1},
        {"tier_mode": "stairstep"},
        {"surprise": 1},  # extra keys forbidden
    ],
)
def test_invalid_plan_terms_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EmailPlan(**plan_kwargs(**overrides))


@pytest.mark.parametrize("tier", [{"up_to": 0, "unit_price": "0.01"}, {"unit_price": "-0.01"}])
def test_invalid_tier_is_refused(tier: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Tier.model_validate(tier)


def test_catalogue_refuses_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidCatalogue):
        Catalogue.load(tmp_path)


def test_catalogue_refuses_a_plan_defined_twice(tmp_path: Path) -> None:
    text = (
        '[plans.x]\nname = "X"\ncurrency = "EUR"\nmonthly_fee = "1"\n'
        'tiers = [{ unit_price = "0.1" }]\n'
    )
    (tmp_path / "a.toml").write_text(text)
    (tmp_path / "b.toml").write_text(text)
    with pytest.raises(InvalidCatalogue, match="defined twice"):
        Catalogue.load(tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "[plans.x\n",  # not TOML
        '[plans.x]\nname = "X"\ncurrency = "EUR"\nmonthly_fee = "1"\n',  # no tiers
        '[plans.x]\nname = "X"\ncurrency = "EUR"\nmonthly_fee = "1"\n'
        'tiers = [{ up_to = 5, unit_price = "0.1" }]\n',  # last tier bounded
        "[other]\nx = 1\n",  # not a plans table
    ],
)
def test_catalogue_refuses_invalid_files_with_the_file_name(tmp_path: Path, text: str) -> None:
    (tmp_path / "broken.toml").write_text(text)
    with pytest.raises(InvalidCatalogue, match=r"broken\.toml"):
        Catalogue.load(tmp_path)
