from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unit_builders import STARTER, VOLUME

from ledger.documents import (
    POSTPAY_TERMS,
    Document,
    DocumentInvariantBroken,
    PaymentMode,
    build_document,
)
from ledger.emails.pricing import Charge, month_price
from ledger.emails.usage import LateUsage, MonthUsage
from ledger.money import Money
from ledger.periods import Month
from ledger.plans import EmailPlan, Tier, TierMode

JAN = Month(2026, 1)
ISSUED = date(2026, 2, 1)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def month(plan: EmailPlan, *batches: int, smtp: int = 0, fee: bool = True) -> MonthUsage:
    usage = MonthUsage(JAN)
    if fee:
        usage = usage.with_fee(Money.of(plan.monthly_fee, plan.currency), plan)
    for count in batches:
        usage, _ = usage.record(plan, count, 0)
    if smtp:
        usage, _ = usage.record(plan, 0, smtp)
    return usage


def document(
    usage: MonthUsage,
    mode: PaymentMode,
    *,
    tax_rate: str = "0.21",
    late: tuple[LateUsage, ...] = (),
    currency: str = "EUR",
) -> Document:
    return build_document(
        number="2026-000001",
        account_id="acc-1",
        payment_mode=mode,
        usage=usage,
        late=late,
        tax_rate=Decimal(tax_rate),
        currency=currency,
        issued_on=ISSUED,
    )


def amounts(doc: Document) -> list[tuple[str, int, Decimal]]:
    return [(line.kind, line.quantity, line.amount.amount) for line in doc.lines]


def single_tier(price: str, *, mode: TierMode = "graduated", up_to: int | None = None) -> EmailPlan:
    tiers: tuple[Tier, ...] = (Tier(unit_price=Decimal(price)),)
    if up_to is not None:
        tiers = (Tier(up_to=up_to, unit_price=Decimal(price)), *tiers)
    return EmailPlan(
        id="tiny",
        name="Tiny",
        currency="EUR",
        monthly_fee=Decimal(0),
        tier_mode=mode,
        tiers=tiers,
    )


# ---------------------------------------------------------------- postpay invoice


def test_postpaid_graduated_month_is_an_invoice_due_in_14_days() -> None:
    doc = document(month(STARTER, 12345, smtp=7), "postpaid")
    assert doc.kind == "invoice"
    assert doc.due_on == date(2026, 2, 15)  # 1 Feb + 14 days
    assert timedelta(days=14) == POSTPAY_TERMS
    assert doc.period == JAN
    assert doc.issued_on == ISSUED
    assert amounts(doc) == [
        ("fee", 1, Decimal("10.00")),
        ("included", 1000, Decimal("0")),
        ("usage", 9000, Decimal("9.00")),  # positions 1001..10000: 9000 * 0.0010 = 9.0000
        ("usage", 2345, Decimal("1.88")),  # 10001..12345: 2345 * 0.0008 = 1.8760 -> 1.88
        ("custom_smtp", 7, Decimal("0")),
    ]
    assert doc.lines[2].unit_price == Decimal("0.0010")
    assert doc.lines[3].unit_price == Decimal("0.0008")
    assert doc.subtotal == eur("20.88")  # 10.00 + 9.00 + 1.88
    assert doc.tax == eur("4.38")  # 20.88 * 0.21 = 4.3848 -> 4.38
    assert doc.total == eur("25.26")  # 20.88 + 4.38
    assert doc.accrued == eur("20.8760")  # fee 10.00 + exact usage 9.0000 + 1.8760
    assert doc.balance_adjustment == eur("4.3840")  # 25.26 - 20.8760
    doc.check_invariants()


def test_usage_lines_name_the_tier_and_its_paid_positions() -> None:
    doc = document(month(STARTER, 100001), "postpaid")
    descriptions = [line.description for line in doc.lines if line.kind == "usage"]
    assert descriptions == [
        "Emails, Email Starter, tier 1 (1,001-10,000)",
        "Emails, Email Starter, tier 2 (10,001-100,000)",
        "Emails, Email Starter, tier 3 (100,001+)",
    ]


def test_postpaid_volume_month_is_priced_once_at_the_final_tier() -> None:
    doc = document(month(VOLUME, 15000, 10000), "postpaid")
    assert amounts(doc) == [
        ("fee", 1, Decimal("25.00")),
        ("included", 5000, Decimal("0")),
        ("usage", 20000, Decimal("12.00")),  # 20000 paid * 0.0006 (month total 25000: tier 2)
    ]
    assert doc.subtotal == eur("37.00")  # 25.00 + 12.00
    assert doc.tax == eur("7.77")  # 37.00 * 0.21 = 7.77
    assert doc.total == eur("44.77")
    # during the month, as sent: 15000 at tier 1 = 13.5000 and 5000 at tier 2 = 3.0000
    # (positions 5001..20000 and 20001..25000), plus the fee 25.00
    assert doc.accrued == eur("41.5000")


# ---------------------------------------------------------------- prepaid receipt


def test_prepaid_volume_month_crossing_a_tier_gets_a_negative_true_up() -> None:
    # charged as sent, each email at the tier its position reached (batches 15000 + 10000):
    # positions 5001..20000 -> 15000 at tier 1: 15000 * 0.0009 = 13.5000
    # positions 20001..25000 -> 5000 at tier 2: 5000 * 0.0006 = 3.0000
    # final: 20000 paid at tier 2: 20000 * 0.0006 = 12.0000
    # true-up = 12.00 - (13.50 + 3.00) = -4.50
    doc = document(month(VOLUME, 15000, 10000), "prepaid")
    assert doc.kind == "receipt"
    assert doc.due_on is None
    assert amounts(doc) == [
        ("fee", 1, Decimal("25.00")),
        ("included", 5000, Decimal("0")),
        ("usage", 15000, Decimal("13.50")),
        ("usage", 5000, Decimal("3.00")),
        ("volume_true_up", 25000, Decimal("-4.50")),
    ]
    assert doc.lines[-1].unit_price is None
    assert doc.subtotal == eur("37.00")  # 25.00 + 13.50 + 3.00 - 4.50
    assert doc.tax == eur("7.77")  # 37.00 * 0.21
    assert doc.total == eur("44.77")
    assert doc.accrued == eur("41.5000")  # 25.00 + 13.5000 + 3.0000
    assert doc.balance_adjustment == eur("3.27")  # 44.77 - 41.50
    # the same emails in other batches make the same receipt
    assert document(month(VOLUME, 25000), "prepaid") == doc
    assert document(month(VOLUME, 1, 19999, 4000, 1000), "prepaid") == doc


def test_prepaid_volume_month_within_one_tier_has_a_zero_true_up() -> None:
    # 5000 included; 2000 + 3000 paid, both at tier 1: 5000 * 0.0009 = 4.5000
    doc = document(month(VOLUME, 7000, 3000), "prepaid")
    assert amounts(doc)[2:] == [
        ("usage", 5000, Decimal("4.50")),
        ("volume_true_up", 10000, Decimal("0.00")),
    ]


def test_prepaid_volume_month_of_only_included_emails_has_no_usage_lines() -> None:
    doc = document(month(VOLUME, 5000), "prepaid")
    assert [line.kind for line in doc.lines] == ["fee", "included"]


def test_prepaid_graduated_month_is_a_receipt_without_true_up() -> None:
    doc = document(month(STARTER, 1500), "prepaid")
    assert doc.kind == "receipt"
    assert doc.due_on is None
    assert amounts(doc) == [
        ("fee", 1, Decimal("10.00")),
        ("included", 1000, Decimal("0")),
        ("usage", 500, Decimal("0.50")),  # 500 * 0.0010
    ]


# ---------------------------------------------------------------- rounding


def test_usage_line_is_rounded_half_up() -> None:
    # 10 * 0.0005 = 0.0050 -> 0.01 (banker's rounding would say 0.00)
    doc = document(month(single_tier("0.0005"), 10, fee=False), "postpaid", tax_rate="0")
    assert amounts(doc) == [("usage", 10, Decimal("0.01"))]
    assert doc.total == eur("0.01")
    assert doc.accrued == eur("0.0050")


def test_each_line_is_rounded_on_its_own() -> None:
    # two tiers of 10 emails at 0.0005: each line 0.0050 -> 0.01, subtotal 0.02,
    # although the exact usage (0.0100) would round to 0.01 in one go
    doc = document(month(single_tier("0.0005", up_to=10), 20, fee=False), "postpaid", tax_rate="0")
    assert amounts(doc) == [("usage", 10, Decimal("0.01")), ("usage", 10, Decimal("0.01"))]
    assert doc.subtotal == eur("0.02")


def test_tax_is_rounded_half_up() -> None:
    # fee 10.00 + 1000 * 0.0005 = 0.50 -> subtotal 10.50; 10.50 * 0.21 = 2.2050 -> 2.21
    plan = single_tier("0.0005").model_copy(update={"monthly_fee": Decimal("10.00")})
    doc = document(month(plan, 1000), "postpaid", tax_rate="0.21")
    assert doc.subtotal == eur("10.50")
    assert doc.tax == eur("2.21")
    assert doc.total == eur("12.71")


def test_volume_true_up_absorbs_rounding_of_the_lines_charged_as_sent() -> None:
    # volume, tier 1 up to 5 @0.003, then @0.0025; no fee, nothing included
    plan = EmailPlan(
        id="v",
        name="V",
        currency="EUR",
        monthly_fee=Decimal(0),
        tier_mode="volume",
        tiers=(Tier(up_to=5, unit_price=Decimal("0.003")), Tier(unit_price=Decimal("0.0025"))),
    )
    # as sent: positions 1..5 @0.003 = 0.015 -> line 0.02; 6..15 @0.0025 = 0.025 -> 0.03
    # final: 15 @0.0025 = 0.0375 -> 0.04; true-up = 0.04 - (0.02 + 0.03) = -0.01
    # (rounding the exact difference 0.0375 - 0.0400 = -0.0025 would have given 0.00)
    doc = document(month(plan, 3, 12, fee=False), "prepaid", tax_rate="0")
    assert amounts(doc) == [
        ("usage", 5, Decimal("0.02")),
        ("usage", 10, Decimal("0.03")),
        ("volume_true_up", 15, Decimal("-0.01")),
    ]
    assert doc.total == eur("0.04")
    # batches 10 + 5 give the same lines: each email is charged by its position
    assert document(month(plan, 10, 5, fee=False), "prepaid", tax_rate="0") == doc


def test_monthly_fee_line_is_rounded_but_accrued_is_exact() -> None:
    plan = single_tier("0").model_copy(update={"monthly_fee": Decimal("9.995")})
    doc = document(month(plan), "postpaid", tax_rate="0")
    assert amounts(doc) == [("fee", 1, Decimal("10.00"))]  # 9.995 -> 10.00 half-up
    assert doc.lines[0].unit_price == Decimal("9.995")
    assert doc.accrued == eur("9.995")
    assert doc.balance_adjustment == eur("0.005")


def test_jpy_document_rounds_to_whole_yen() -> None:
    plan = EmailPlan(
        id="jp",
        name="JP",
        currency="JPY",
        monthly_fee=Decimal(1000),
        tiers=(Tier(unit_price=Decimal("0.5")),),
    )
    doc = document(month(plan, 3), "postpaid", tax_rate="0.1", currency="JPY")
    # fee 1000; usage 3 * 0.5 = 1.5 -> 2; subtotal 1002; tax 100.2 -> 100; total 1102
    assert amounts(doc) == [("fee", 1, Decimal("1000")), ("usage", 3, Decimal("2"))]
    assert doc.tax == Money.of("100", "JPY")
    assert doc.total == Money.of("1102", "JPY")


# ---------------------------------------------------------------- other lines


def test_custom_smtp_line_shows_the_count_at_zero() -> None:
    doc = document(month(STARTER, smtp=250), "postpaid")
    assert amounts(doc) == [("fee", 1, Decimal("10.00")), ("custom_smtp", 250, Decimal("0"))]


def test_late_usage_is_a_rounded_line_of_its_own() -> None:
    # 2500 late emails of December at 0.0010 = 2.5000; 7 at 0.0008 = 0.0056 -> 2.5056 -> 2.51
    late = LateUsage(
        Month(2025, 12),
        2507,
        (
            Charge("email-starter", 1, Decimal("0.0010"), 2500),
            Charge("email-starter", 2, Decimal("0.0008"), 7),
        ),
    )
    doc = document(month(STARTER), "postpaid", late=(late,), tax_rate="0")
    assert amounts(doc) == [("fee", 1, Decimal("10.00")), ("late_usage", 2507, Decimal("2.51"))]
    assert "2025-12" in doc.lines[1].description
    assert doc.lines[1].unit_price is None
    assert doc.total == eur("12.51")
    assert doc.accrued == eur("12.5056")  # 10.00 + 2.5056


def test_month_without_fee_or_usage_is_an_empty_zero_document() -> None:
    doc = document(MonthUsage(JAN), "postpaid")
    assert doc.lines == ()
    assert doc.total == eur("0")
    assert doc.accrued == eur("0")


def test_tampered_document_breaks_its_invariants() -> None:
    doc = document(month(STARTER, 12345), "postpaid")
    with pytest.raises(DocumentInvariantBroken):
        dataclasses.replace(doc, subtotal=doc.subtotal + eur("0.01")).check_invariants()
    with pytest.raises(DocumentInvariantBroken):
        dataclasses.replace(doc, total=doc.total + eur("0.01")).check_invariants()
    unrounded = dataclasses.replace(doc.lines[0], amount=eur("10.001"))
    with pytest.raises(DocumentInvariantBroken):
        dataclasses.replace(
            doc, lines=(unrounded, *doc.lines[1:]), subtotal=doc.subtotal + eur("0.001")
        ).check_invariants()


# ---------------------------------------------------------------- properties


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@st.composite
def plans(draw: st.DrawFn) -> EmailPlan:
    bounds = sorted(draw(st.sets(st.integers(1, 300), max_size=3)))
    prices = sorted(
        draw(
            st.lists(
                st.decimals(min_value=0, max_value=Decimal("0.05"), places=5),
                min_size=len(bounds) + 1,
                max_size=len(bounds) + 1,
            )
        ),
        reverse=True,
    )
    tiers = [Tier(up_to=b, unit_price=p) for b, p in zip(bounds, prices, strict=False)]
    return EmailPlan(
        id="gen",
        name="Generated",
        currency="EUR",
        monthly_fee=draw(st.decimals(min_value=0, max_value=100, places=3)),
        included_emails=draw(st.integers(0, 80)),
        tier_mode=draw(st.sampled_from(["graduated", "volume"])),
        tiers=(*tiers, Tier(unit_price=prices[-1])),
    )


late_items = st.lists(
    st.builds(
        lambda m, n, price: LateUsage(
            Month(2025, m), n, (Charge("gen", 1, price, n),) if n else ()
        ),
        st.integers(1, 12),
        st.integers(0, 500),
        st.decimals(min_value=0, max_value=Decimal("0.05"), places=5),
    ),
    max_size=2,
    unique_by=lambda late: late.month,
)


@settings(max_examples=150, deadline=None)
@given(
    plan=plans(),
    mode=st.sampled_from(["prepaid", "postpaid"]),
    batches=st.lists(st.integers(0, 200), max_size=6),
    smtp=st.integers(0, 50),
    late=late_items,
    tax_rate=st.decimals(min_value=0, max_value=Decimal("0.3"), places=3),
)
def test_built_documents_always_add_up(
    *,
    plan: EmailPlan,
    mode: PaymentMode,
    batches: list[int],
    smtp: int,
    late: list[LateUsage],
    tax_rate: Decimal,
) -> None:
    usage = month(plan, *batches, smtp=smtp)
    doc = build_document(
        number="2026-000001",
        account_id="acc",
        payment_mode=mode,
        usage=usage,
        late=tuple(late),
        tax_rate=tax_rate,
        currency="EUR",
        issued_on=ISSUED,
    )
    doc.check_invariants()
    subtotal = sum((line.amount.amount for line in doc.lines), Decimal(0))
    assert doc.subtotal.amount == subtotal
    assert doc.tax.amount == cents(subtotal * tax_rate)
    assert doc.total.amount == subtotal + doc.tax.amount
    assert all(line.amount.amount == cents(line.amount.amount) for line in doc.lines)
    # the usage of the month, whatever the mode, is billed at the final exact price rounded
    # once per tier line; for a prepaid volume month the true-up makes it round(final) exactly
    n = sum(batches)
    billed = sum(
        (line.amount.amount for line in doc.lines if line.kind in ("usage", "volume_true_up")),
        Decimal(0),
    )
    if plan.tier_mode == "volume":
        assert billed == cents(month_price(plan, n))
    # what was debited during the month: the fee plus every email's exact charge as sent
    assert doc.accrued.amount == (
        plan.monthly_fee + usage.charged + sum((item.amount for item in late), Decimal(0))
    )
    assert doc.balance_adjustment == doc.total - doc.accrued
    assert doc.kind == ("receipt" if mode == "prepaid" else "invoice")
    assert doc.due_on == (None if mode == "prepaid" else date(2026, 2, 15))
    included = [line.quantity for line in doc.lines if line.kind == "included"]
    assert sum(included) == min(n, plan.included_emails)
