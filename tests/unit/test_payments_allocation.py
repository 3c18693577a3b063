"""Allocation of payments (issue 11): amounts worked out by hand, then the
invariants as hypothesis properties over arbitrary streams of payments."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.money import Money
from ledger.payments.allocation import (
    Allocation,
    Credit,
    Payment,
    Settlement,
    apply_credit,
    apply_payment,
)
from ledger.payments.receivables import PaymentInvariantBroken, Receivable


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def proforma(reference: str, total: str, issued: date, **kwargs: object) -> Receivable:
    return Receivable(reference, eur(total), eur("0.00"), issued, issued, "collection", **kwargs)  # type: ignore[arg-type]


PF1 = proforma("PF-a-0001", "119.00", date(2026, 1, 15))
PF2 = proforma("PF-a-0002", "59.50", date(2026, 2, 15))


def by_ref(settlement: Settlement) -> dict[str, Receivable]:
    return {r.reference: r for r in settlement.receivables}


def test_a_payment_in_full_pays_the_document_it_names() -> None:
    done = apply_payment([PF1, PF2], [], Payment("p1", eur("119.00"), "PF-a-0001"), "EUR")
    assert done.allocations == (Allocation("p1", "PF-a-0001", eur("119.00"), None),)
    assert done.unapplied == done.credit == ()
    assert done.paid == ("PF-a-0001",)
    assert by_ref(done)["PF-a-0001"].state == "paid"
    assert by_ref(done)["PF-a-0002"] == PF2


def test_partial_payments_accumulate_and_the_last_one_settles() -> None:
    first = apply_payment([PF1], [], Payment("p1", eur("100.00"), "PF-a-0001"), "EUR")
    after = by_ref(first)["PF-a-0001"]
    assert (after.state, after.paid, after.amount_due) == (
        "partially_paid",
        eur("100.00"),
        eur("19.00"),
    )
    assert first.paid == ()
    second = apply_payment(
        first.receivables, first.credit, Payment("p2", eur("19.00"), "PF-a-0001"), "EUR"
    )
    assert by_ref(second)["PF-a-0001"].state == "paid"
    assert second.paid == ("PF-a-0001",)


def test_an_overpayment_is_credit_allocated_to_the_next_open_document_then_held() -> None:
    # 150.00 for PF-1 (119.00): 31.00 overpaid, onto PF-2 (59.50), which then owes 28.50.
    first = apply_payment([PF1, PF2], [], Payment("p1", eur("150.00"), "PF-a-0001"), "EUR")
    assert first.unapplied == (Credit("p1", eur("31.00"), "overpayment", "PF-a-0001"),)
    assert first.allocations == (
        Allocation("p1", "PF-a-0001", eur("119.00"), None),
        Allocation("p1", "PF-a-0002", eur("31.00"), "overpayment"),
    )
    assert first.credit == ()
    assert by_ref(first)["PF-a-0002"].amount_due == eur("28.50")
    # 30.00 for PF-2: 28.50 settles it, 1.50 is held (nothing else is open).
    second = apply_payment(
        first.receivables, first.credit, Payment("p2", eur("30.00"), "PF-a-0002"), "EUR"
    )
    assert second.credit == (Credit("p2", eur("1.50"), "overpayment", "PF-a-0002"),)
    assert second.paid == ("PF-a-0002",)
    # The next proforma (59.50) takes the 1.50 when it is issued: 58.00 left to collect.
    pf3 = proforma("PF-a-0003", "59.50", date(2026, 3, 15))
    third = apply_credit([*second.receivables, pf3], second.credit, "EUR")
    assert third.allocations == (Allocation("p2", "PF-a-0003", eur("1.50"), "overpayment"),)
    assert third.credit == ()
    assert by_ref(third)["PF-a-0003"].amount_due == eur("58.00")


@pytest.mark.parametrize(
    ("reference", "reason"),
    [("2026-999999", "unknown_reference"), (None, "no_reference")],
)
def test_money_without_a_document_goes_to_the_oldest_open_one(
    reference: str | None, reason: str
) -> None:
    done = apply_payment([PF2, PF1], [], Payment("p1", eur("10.00"), reference), "EUR")
    assert done.unapplied == (Credit("p1", eur("10.00"), reason, reference),)  # type: ignore[arg-type]
    assert done.allocations == (Allocation("p1", "PF-a-0001", eur("10.00"), reason),)  # type: ignore[arg-type]
    assert by_ref(done)["PF-a-0001"].amount_due == eur("109.00")


def test_a_second_payment_of_a_paid_document_is_held_as_already_paid() -> None:
    paid = PF1.with_paid(eur("119.00"))
    done = apply_payment([paid], [], Payment("p2", eur("119.00"), "PF-a-0001"), "EUR")
    assert done.allocations == ()
    assert done.credit == (Credit("p2", eur("119.00"), "already_paid", "PF-a-0001"),)
    assert by_ref(done)["PF-a-0001"] == paid


def test_a_payment_for_a_replaced_proforma_pays_its_replacement_and_the_rest_is_held() -> None:
    replaced = proforma("PF-a-0001", "119.00", date(2026, 1, 15), replaced_by="PF-a-0002")
    replacement = proforma("PF-a-0002", "95.20", date(2026, 1, 20))
    done = apply_payment(
        [replaced, replacement], [], Payment("p1", eur("119.00"), "PF-a-0001"), "EUR"
    )
    assert done.allocations == (Allocation("p1", "PF-a-0002", eur("95.20"), "replaced_proforma"),)
    assert done.credit == (Credit("p1", eur("23.80"), "replaced_proforma", "PF-a-0001"),)
    assert by_ref(done)["PF-a-0001"].state == "replaced"
    assert by_ref(done)["PF-a-0001"].amount_due == eur("0")
    assert done.paid == ("PF-a-0002",)


def test_a_payment_in_another_currency_is_held_and_never_converted_or_allocated() -> None:
    usd = Money.of("20.00", "USD")
    done = apply_payment([PF1], [], Payment("p1", usd, "PF-a-0001"), "EUR")
    assert done.allocations == ()
    assert done.credit == (Credit("p1", usd, "other_currency", "PF-a-0001"),)
    # ... and stays held when the next document is issued.
    again = apply_credit([*done.receivables, PF2], done.credit, "EUR")
    assert again.allocations == ()
    assert again.credit == done.credit


def test_money_that_is_not_in_minor_units_or_not_positive_is_a_bug_here() -> None:
    with pytest.raises(PaymentInvariantBroken):
        apply_payment([PF1], [], Payment("p1", eur("1.005"), "PF-a-0001"), "EUR")
    with pytest.raises(PaymentInvariantBroken):
        apply_payment([PF1], [], Payment("p1", eur("0.00"), "PF-a-0001"), "EUR")
    with pytest.raises(PaymentInvariantBroken):
        PF1.with_paid(eur("119.01"))


# ---------------------------------------------------------------- properties

CENTS = st.integers(min_value=1, max_value=50_000)


@st.composite
def books(draw: st.DrawFn) -> tuple[list[Receivable], list[tuple[str, object]]]:
    count = draw(st.integers(min_value=0, max_value=6))
    receivables = []
    for i in range(count):
        issued = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 300)))
        replaced = draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans())
        receivables.append(
            Receivable(
                f"PF-a-{i:04d}",
                Money(Decimal(draw(CENTS)) / 100, "EUR"),
                eur("0.00"),
                issued,
                issued,
                "collection",
                replaced_by="PF-x" if replaced else None,
            )
        )
    references = st.sampled_from([*(r.reference for r in receivables), "unknown", None])
    steps: list[tuple[str, object]] = []
    for n in range(draw(st.integers(min_value=1, max_value=12))):
        if draw(st.integers(0, 5)) == 0:
            issued = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 365)))
            cents = Decimal(draw(CENTS)) / 100
            steps.append(("issue", proforma(f"PF-b-{n:04d}", str(cents), issued)))
        else:
            currency = draw(st.sampled_from(["EUR"] * 9 + ["USD"]))
            amount = Money(Decimal(draw(CENTS)) / 100, currency)
            steps.append(("pay", Payment(f"p{n}", amount, draw(references))))
    return receivables, steps


@settings(max_examples=300, deadline=None)
@given(books())
def test_allocations_plus_credit_equal_payments_and_documents_are_paid_exactly_when_covered(
    book: tuple[list[Receivable], list[tuple[str, object]]],
) -> None:
    receivables, steps = book
    originals = {r.reference: r for r in receivables}
    credit: tuple[Credit, ...] = ()
    paid_in: dict[str, Decimal] = defaultdict(Decimal)
    allocated: dict[str, Decimal] = defaultdict(Decimal)
    current = list(receivables)
    for kind, item in steps:
        if kind == "issue":
            assert isinstance(item, Receivable)
            originals[item.reference] = item
            done = apply_credit([*current, item], credit, "EUR")
        else:
            assert isinstance(item, Payment)
            paid_in[item.amount.currency] += item.amount.amount
            done = apply_payment(current, credit, item, "EUR")
        for allocation in done.allocations:
            allocated[allocation.reference] += allocation.amount.amount
        current, credit = list(done.receivables), done.credit
        held: dict[str, Decimal] = defaultdict(Decimal)
        for piece in credit:
            held[piece.amount.currency] += piece.amount.amount
        for currency in ("EUR", "USD"):
            out = held[currency] + (sum(allocated.values(), Decimal(0)) if currency == "EUR" else 0)
            assert out == paid_in[currency]
        for document in current:
            assert Decimal(0) <= document.amount_due.amount
            assert document.paid.amount == allocated[document.reference]
            assert (document.state == "paid") == (
                document.replaced_by is None
                and allocated[document.reference] == document.total.amount
            )
            assert document.total == originals[document.reference].total
        # Credit in the account's currency is only ever held when nothing is open.
        if any(piece.amount.currency == "EUR" for piece in credit):
            assert not any(document.payable for document in current)


def test_several_pieces_of_held_credit_pay_one_new_document_together() -> None:
    first = apply_payment([], [], Payment("p1", eur("0.01"), None), "EUR")
    second = apply_payment([], first.credit, Payment("p2", eur("0.01"), None), "EUR")
    assert [piece.payment_id for piece in second.credit] == ["p1", "p2"]
    pf = proforma("PF-a-0001", "0.02", date(2026, 1, 15))
    done = apply_credit([pf], second.credit, "EUR")
    assert done.allocations == (
        Allocation("p1", "PF-a-0001", eur("0.01"), "no_reference"),
        Allocation("p2", "PF-a-0001", eur("0.01"), "no_reference"),
    )
    assert done.paid == ("PF-a-0001",)
    assert done.credit == ()
