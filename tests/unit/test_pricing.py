from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from unit_builders import STARTER, VOLUME

from ledger.emails.pricing import (
    Charge,
    charges_as_sent,
    final_charges,
    free_count,
    merge,
    month_price,
    next_email_price,
    tier_at,
    tier_bounds,
    total,
)
from ledger.plans import EmailPlan, Tier, TierMode

# ---------------------------------------------------------------- tier lookup


def test_tier_bounds_are_half_open_position_ranges() -> None:
    assert tier_bounds(STARTER) == [(0, 10000), (10000, 100000), (100000, None)]


@pytest.mark.parametrize(
    ("position", "tier"),
    [(1, 1), (1000, 1), (1001, 1), (10000, 1), (10001, 2), (100000, 2), (100001, 3), (10**9, 3)],
)
def test_up_to_is_inclusive(position: int, tier: int) -> None:
    assert tier_at(STARTER, position) == tier


@pytest.mark.parametrize(
    ("start", "end", "free"),
    [(0, 0, 0), (0, 999, 999), (0, 1000, 1000), (0, 5000, 1000), (500, 1500, 500), (1000, 2000, 0)],
)
def test_free_count_counts_positions_within_included_emails(
    start: int, end: int, free: int
) -> None:
    assert free_count(STARTER, start, end) == free


# ---------------------------------------------------------------- month prices


@pytest.mark.parametrize(
    ("emails", "price"),
    [
        (0, "0"),
        (999, "0"),
        (1000, "0"),  # positions 1..1000 are included
        (1001, "0.0010"),  # 1 * 0.0010
        (10000, "9.0000"),  # 9000 * 0.0010
        (10001, "9.0008"),  # 9.0000 + 1 * 0.0008
        (100000, "81.0000"),  # 9.0000 + 90000 * 0.0008 = 9 + 72
        (100001, "81.0005"),  # 81.0000 + 1 * 0.0005
        (250000, "156.0000"),  # 81.0000 + 150000 * 0.0005 = 81 + 75
    ],
)
def test_graduated_month_price_at_every_tier_boundary(emails: int, price: str) -> None:
    assert month_price(STARTER, emails) == Decimal(price)


@pytest.mark.parametrize(
    ("emails", "price"),
    [
        (0, "0"),
        (5000, "0"),  # positions 1..5000 are included
        (5001, "0.0009"),  # 1 paid, month in tier 1: 1 * 0.0009
        (20000, "13.5000"),  # 15000 paid * 0.0009
        (20001, "9.0006"),  # 15001 paid, month reaches tier 2: 15001 * 0.0006
        (25000, "12.0000"),  # 20000 paid * 0.0006
        (200000, "117.0000"),  # 195000 paid * 0.0006
        (200001, "68.25035"),  # 195001 paid, tier 3: 195001 * 0.00035
    ],
)
def test_volume_month_price_at_every_tier_boundary(emails: int, price: str) -> None:
    assert month_price(VOLUME, emails) == Decimal(price)


def test_volume_cliff_crossing_a_tier_lowers_the_month_total() -> None:
    # 20000 emails: 15000 * 0.0009 = 13.5000; one more: 15001 * 0.0006 = 9.0006
    assert month_price(VOLUME, 20001) < month_price(VOLUME, 20000)


# ---------------------------------------------------------------- batch charges


def test_graduated_batch_straddling_a_tier_is_split_per_tier() -> None:
    # positions 9991..10010: 10 in tier 1 (..10000), 10 in tier 2
    assert charges_as_sent(STARTER, 9990, 10010) == (
        Charge("email-starter", 1, Decimal("0.0010"), 10),
        Charge("email-starter", 2, Decimal("0.0008"), 10),
    )


def test_graduated_batch_straddling_the_included_emails_pays_only_the_rest() -> None:
    # positions 501..1500: 501..1000 free, 1001..1500 = 500 paid in tier 1
    charges = charges_as_sent(STARTER, 500, 1500)
    assert charges == (Charge("email-starter", 1, Decimal("0.0010"), 500),)
    assert total(charges) == Decimal("0.5000")  # 500 * 0.0010


def test_batch_within_included_emails_has_no_charge() -> None:
    assert charges_as_sent(STARTER, 0, 1000) == ()
    assert charges_as_sent(VOLUME, 0, 5000) == ()
    assert charges_as_sent(STARTER, 10, 10) == ()


def test_graduated_batch_spanning_all_tiers() -> None:
    # positions 1..100010: 1000 free; 9000 @0.0010; 90000 @0.0008; 10 @0.0005
    charges = charges_as_sent(STARTER, 0, 100010)
    assert [(c.tier, c.count) for c in charges] == [(1, 9000), (2, 90000), (3, 10)]
    # 9.0000 + 72.0000 + 0.0050 = 81.0050
    assert total(charges) == Decimal("81.0050")


def test_volume_emails_are_charged_as_sent_at_the_tier_each_position_reaches() -> None:
    # batch 1: positions 1..15000: 5000 free, 10000 paid, all in tier 1 (<= 20000, 0.0009)
    assert charges_as_sent(VOLUME, 0, 15000) == (
        Charge("email-volume", 1, Decimal("0.0009"), 10000),
    )
    # batch 2: positions 15001..25000: 15001..20000 reached tier 1 (5000 at 0.0009),
    # 20001..25000 tier 2 (5000 at 0.0006); the close trues the month up to tier 2
    assert charges_as_sent(VOLUME, 15000, 25000) == (
        Charge("email-volume", 1, Decimal("0.0009"), 5000),
        Charge("email-volume", 2, Decimal("0.0006"), 5000),
    )
    # positions 4001..6000: 1000 free, 1000 paid in tier 1
    assert charges_as_sent(VOLUME, 4000, 6000) == (
        Charge("email-volume", 1, Decimal("0.0009"), 1000),
    )


def test_volume_final_charges_use_the_month_total_tier() -> None:
    # positions 1..15000 of a month that ended at 25000: 10000 paid at tier 2 (0.0006)
    assert final_charges(VOLUME, 0, 15000, 25000) == (
        Charge("email-volume", 2, Decimal("0.0006"), 10000),
    )


def test_graduated_final_charges_equal_charges_as_sent() -> None:
    assert final_charges(STARTER, 9990, 10010, 50000) == charges_as_sent(STARTER, 9990, 10010)


@pytest.mark.parametrize(
    ("plan", "volume", "price"),
    [
        (STARTER, 0, "0"),
        (STARTER, 999, "0"),  # the next email is the 1000th: included
        (STARTER, 1000, "0.0010"),  # the 1001st
        (STARTER, 10000, "0.0008"),  # the 10001st
        (STARTER, 100000, "0.0005"),  # the 100001st
        (VOLUME, 4999, "0"),
        (VOLUME, 5000, "0.0009"),
        (VOLUME, 20000, "0.0006"),  # the 20001st reaches tier 2
    ],
)
def test_next_email_price(plan: EmailPlan, volume: int, price: str) -> None:
    assert next_email_price(plan, volume) == Decimal(price)


def test_charge_amount_is_exact() -> None:
    # 2345 * 0.0008 = 1.8760
    assert Charge("p", 2, Decimal("0.0008"), 2345).amount == Decimal("1.8760")
    assert total(()) == Decimal(0)


def test_merge_adds_counts_by_plan_tier_and_price_keeping_order() -> None:
    existing = (Charge("p", 1, Decimal("0.01"), 5), Charge("p", 2, Decimal("0.005"), 3))
    new = (Charge("p", 2, Decimal("0.005"), 4), Charge("p", 3, Decimal("0.001"), 1))
    assert merge(existing, new) == (
        Charge("p", 1, Decimal("0.01"), 5),
        Charge("p", 2, Decimal("0.005"), 7),  # 3 + 4
        Charge("p", 3, Decimal("0.001"), 1),
    )
    # same tier of another plan, or another price, is a separate charge
    assert len(merge(existing, (Charge("q", 1, Decimal("0.01"), 1),))) == 3
    assert len(merge(existing, (Charge("p", 1, Decimal("0.02"), 1),))) == 3


# ---------------------------------------------------------------- properties


@st.composite
def plans(draw: st.DrawFn, mode: TierMode | None = None, falling_prices: bool = False) -> EmailPlan:
    bounds = sorted(draw(st.sets(st.integers(1, 300), max_size=4)))
    prices = draw(
        st.lists(
            st.decimals(min_value=0, max_value=Decimal("0.05"), places=5),
            min_size=len(bounds) + 1,
            max_size=len(bounds) + 1,
        )
    )
    if falling_prices:
        prices.sort(reverse=True)
    tiers = [Tier(up_to=b, unit_price=p) for b, p in zip(bounds, prices, strict=False)]
    tiers.append(Tier(unit_price=prices[-1]))
    return EmailPlan(
        id="gen",
        name="Generated",
        currency="EUR",
        monthly_fee=Decimal(0),
        included_emails=draw(st.integers(0, 80)),
        tier_mode=mode or draw(st.sampled_from(["graduated", "volume"])),
        tiers=tuple(tiers),
    )


def price_of_position(plan: EmailPlan, position: int) -> Decimal:
    """Independent oracle: the unit price of the tier holding ``position``."""
    for tier in plan.tiers:
        if tier.up_to is None or position <= tier.up_to:
            return tier.unit_price
    raise AssertionError("unreachable")


volumes = st.integers(0, 400)


@given(plans(mode="graduated"), volumes)
def test_graduated_month_price_is_the_sum_of_each_positions_price(plan: EmailPlan, n: int) -> None:
    expected = sum(
        (price_of_position(plan, p) for p in range(plan.included_emails + 1, n + 1)), Decimal(0)
    )
    assert month_price(plan, n) == expected


@given(plans(mode="volume"), volumes)
def test_volume_month_price_is_paid_emails_at_the_month_total_tier(plan: EmailPlan, n: int) -> None:
    paid = max(0, n - plan.included_emails)
    expected = paid * price_of_position(plan, n) if paid else Decimal(0)
    assert month_price(plan, n) == expected


@given(plans(mode="graduated"), volumes, st.integers(0, 400))
def test_graduated_charges_never_decrease_as_volume_grows(
    plan: EmailPlan, n: int, more: int
) -> None:
    assert month_price(plan, n) <= month_price(plan, n + more)


@given(plans(), volumes)
def test_charged_emails_are_exactly_the_non_included_ones(plan: EmailPlan, n: int) -> None:
    charged = sum(c.count for c in final_charges(plan, 0, n, n))
    assert charged == max(0, n - plan.included_emails)


def batches_of(n: int, cuts: list[int]) -> list[tuple[int, int]]:
    points = [0, *sorted({c for c in cuts if 0 < c < n}), n]
    return list(itertools.pairwise(points))


@given(plans(mode="graduated"), volumes, st.lists(st.integers(0, 400), max_size=12))
def test_graduated_batches_sum_to_the_month_price_whatever_the_split(
    plan: EmailPlan, n: int, cuts: list[int]
) -> None:
    batches = batches_of(n, cuts)
    charged = sum((total(charges_as_sent(plan, a, b)) for a, b in batches), Decimal(0))
    assert charged == month_price(plan, n)


@given(
    st.integers(0, 80),
    st.decimals(min_value=0, max_value=Decimal("0.05"), places=5),
    volumes,
)
def test_single_tier_graduated_plan_equals_single_tier_volume_plan(
    included: int, price: Decimal, n: int
) -> None:
    def plan(mode: TierMode) -> EmailPlan:
        return EmailPlan(
            id="one",
            name="One tier",
            currency="EUR",
            monthly_fee=Decimal(0),
            included_emails=included,
            tier_mode=mode,
            tiers=(Tier(unit_price=price),),
        )

    assert month_price(plan("graduated"), n) == month_price(plan("volume"), n)


@given(plans(mode="volume", falling_prices=True), volumes, st.integers(1, 400))
def test_volume_unit_price_never_increases_as_volume_grows(
    plan: EmailPlan, n: int, more: int
) -> None:
    # compare the unit price applied to the month at n and at n + more emails, both paid
    n = max(n, plan.included_emails + 1)
    (small,) = final_charges(plan, 0, n, n)
    (large,) = final_charges(plan, 0, n + more, n + more)
    assert large.tier >= small.tier
    assert large.unit_price <= small.unit_price


@given(
    plans(mode="volume", falling_prices=True), volumes, st.lists(st.integers(0, 400), max_size=12)
)
def test_volume_charges_as_sent_never_undercharge_the_final_price(
    plan: EmailPlan, n: int, cuts: list[int]
) -> None:
    # each email is charged at the tier of its own position <= the month total, so with
    # falling prices the true-up at the close can only be a discount
    charged = sum((total(charges_as_sent(plan, a, b)) for a, b in batches_of(n, cuts)), Decimal(0))
    assert charged >= month_price(plan, n)


@given(plans(), volumes, st.lists(st.integers(0, 400), max_size=12))
def test_charges_as_sent_are_the_same_whatever_the_batch_split(
    plan: EmailPlan, n: int, cuts: list[int]
) -> None:
    merged: tuple[Charge, ...] = ()
    for a, b in batches_of(n, cuts):
        merged = merge(merged, charges_as_sent(plan, a, b))
    assert merged == charges_as_sent(plan, 0, n)
