from __future__ import annotations

from decimal import Decimal

from unit_builders import STARTER, VOLUME

from ledger.emails.pricing import Charge
from ledger.emails.usage import ClosedMonth, LateUsage, MonthUsage, Segment, add_late, record_late
from ledger.money import Money
from ledger.periods import Month
from ledger.plans import EmailPlan, Tier

JAN = Month(2026, 1)

#: no included emails, every email 0.0020
FLAT = EmailPlan(
    id="flat",
    name="Flat",
    currency="EUR",
    monthly_fee=Decimal("5.00"),
    tiers=(Tier(unit_price=Decimal("0.0020")),),
)


def test_batches_under_one_plan_extend_one_segment_and_merge_charges() -> None:
    usage, first = MonthUsage(JAN).record(STARTER, 1500, 0)
    # positions 1..1500: 1000 included, 500 * 0.0010
    assert first == (Charge("email-starter", 1, Decimal("0.0010"), 500),)
    usage, second = usage.record(STARTER, 300, 0)
    # positions 1501..1800: 300 * 0.0010
    assert second == (Charge("email-starter", 1, Decimal("0.0010"), 300),)
    assert usage.platform == 1800
    assert usage.segments == (
        Segment(STARTER, 0, 1800, (Charge("email-starter", 1, Decimal("0.0010"), 800),)),
    )
    assert usage.included == 1000
    assert usage.charged == Decimal("0.8000")  # 800 * 0.0010


def test_plan_change_mid_month_starts_a_segment_and_positions_carry_on() -> None:
    usage, _ = MonthUsage(JAN).record(STARTER, 1500, 0)
    usage, charges = usage.record(FLAT, 1000, 0)
    # the new plan prices positions 1501..2500: 1000 * 0.0020
    assert charges == (Charge("flat", 1, Decimal("0.0020"), 1000),)
    assert [(s.plan.id, s.start, s.end) for s in usage.segments] == [
        ("email-starter", 0, 1500),
        ("flat", 1500, 2500),
    ]
    assert usage.platform == 2500
    # 500 * 0.0010 + 1000 * 0.0020 = 0.5000 + 2.0000
    assert usage.charged == Decimal("2.5000")


def test_volume_tier_earned_before_a_plan_change_is_kept() -> None:
    other_volume = VOLUME.model_copy(update={"id": "email-volume-2", "monthly_fee": Decimal(30)})
    usage, _ = MonthUsage(JAN).record(VOLUME, 19000, 0)
    usage, charges = usage.record(other_volume, 2000, 0)
    # positions carry on at 19001..21000: charged as sent, 19001..20000 in tier 1 (0.0009),
    # 20001..21000 in tier 2 (0.0006) ...
    assert charges == (
        Charge("email-volume-2", 1, Decimal("0.0009"), 1000),
        Charge("email-volume-2", 2, Decimal("0.0006"), 1000),
    )
    # ... and the month's 21000 reach tier 2 for all of them at the close
    assert usage.final_charges(usage.segments[-1]) == (
        Charge("email-volume-2", 2, Decimal("0.0006"), 2000),
    )


def test_custom_smtp_emails_are_counted_but_never_charged() -> None:
    usage, charges = MonthUsage(JAN).record(STARTER, 0, 5000)
    assert charges == ()
    assert usage.custom_smtp == 5000
    assert usage.platform == 0
    assert usage.segments == ()
    assert usage.charged == Decimal(0)


def test_custom_smtp_emails_do_not_take_platform_positions() -> None:
    usage, _ = MonthUsage(JAN).record(STARTER, 1000, 700)
    _, charges = usage.record(STARTER, 1, 0)
    # the 1001st platform email is the first paid one, whatever went via SMTP
    assert charges == (Charge("email-starter", 1, Decimal("0.0010"), 1),)


def test_with_fee_keeps_recorded_usage() -> None:
    usage, _ = MonthUsage(JAN).record(STARTER, 10, 0)
    with_fee = usage.with_fee(Money.of("10.00", "EUR"), STARTER)
    assert with_fee.fee == Money.of("10.00", "EUR")
    assert with_fee.fee_plan == STARTER
    assert with_fee.platform == 10


def test_late_emails_continue_the_closed_months_positions() -> None:
    closed = ClosedMonth(JAN, 1000, STARTER)
    after, charges = record_late(closed, 2500)
    # positions 1001..3500 -> 2500 * 0.0010
    assert charges == (Charge("email-starter", 1, Decimal("0.0010"), 2500),)
    assert after == ClosedMonth(JAN, 3500, STARTER)


def test_late_emails_within_the_closed_months_included_emails_are_free() -> None:
    after, charges = record_late(ClosedMonth(JAN, 400, STARTER), 600)
    # positions 401..1000 are all included
    assert charges == ()
    assert after.volume == 1000


def test_late_usage_of_the_same_month_is_merged_and_kept_in_month_order() -> None:
    dec = Month(2025, 12)
    c1 = Charge("email-starter", 1, Decimal("0.0010"), 10)
    c2 = Charge("email-starter", 1, Decimal("0.0010"), 5)
    pending = add_late((), JAN, 10, (c1,))
    pending = add_late(pending, dec, 3, ())
    pending = add_late(pending, JAN, 5, (c2,))
    # December before January, although January's came first: arrival order depends on
    # where batches were cut, month order does not
    assert pending == (
        LateUsage(dec, 3, ()),
        LateUsage(JAN, 15, (Charge("email-starter", 1, Decimal("0.0010"), 15),)),
    )
    assert pending[1].amount == Decimal("0.0150")  # 15 * 0.0010


def test_a_volume_months_priced_usage_is_the_month_total_tier_whatever_the_batches() -> None:
    # 25000 emails, 5000 included: 20000 paid, at the tier 25000 reaches (tier 2, 0.0006)
    one, _ = MonthUsage(JAN).record(VOLUME, 25000, 0)
    three, _ = MonthUsage(JAN).record(VOLUME, 6000, 0)
    three, _ = three.record(VOLUME, 14000, 0)
    three, _ = three.record(VOLUME, 5000, 0)
    expected = (Charge("email-volume", 2, Decimal("0.0006"), 20000),)
    assert one.priced == three.priced == expected
    assert sum(c.amount for c in one.priced) == Decimal("12.0000")  # 20000 * 0.0006
    # what was charged as sent: 15000 at tier 1 (5001..20000), 5000 at tier 2 - any split
    assert one.charged == three.charged == Decimal("16.5000")  # 13.5000 + 3.0000
