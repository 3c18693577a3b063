from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import LedgerError
from ledger.money import (
    CurrencyMismatch,
    Money,
    MoneyError,
    SubMinorUnit,
    UnknownCurrency,
    check_minor_units,
    money_sum,
)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


# ---------------------------------------------------------------- construction


def test_money_of_accepts_strings_ints_and_decimals_exactly() -> None:
    assert Money.of("0.1", "EUR").amount == Decimal("0.1")
    assert Money.of(3, "EUR").amount == Decimal(3)
    assert Money.of(Decimal("0.00045"), "EUR").amount == Decimal("0.00045")


def test_float_amount_is_refused() -> None:
    with pytest.raises(MoneyError):
        Money.of(0.1, "EUR")  # type: ignore[arg-type]


def test_boolean_amount_is_refused() -> None:
    with pytest.raises(MoneyError):
        Money.of(True, "EUR")


@pytest.mark.parametrize("text", ["abc", "", "1,50", "NaN", "Infinity", "-Infinity"])
def test_non_decimal_or_non_finite_amount_is_refused(text: str) -> None:
    with pytest.raises(MoneyError):
        Money.of(text, "EUR")


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(UnknownCurrency):
        Money.of("1", "XYZ")
    with pytest.raises(UnknownCurrency):
        Money.zero("eur")


def test_money_errors_are_ledger_errors() -> None:
    assert issubclass(MoneyError, LedgerError)
    assert issubclass(CurrencyMismatch, MoneyError)
    assert issubclass(UnknownCurrency, MoneyError)


def test_zero_is_zero() -> None:
    assert Money.zero("JPY").is_zero
    assert not eur("0.01").is_zero


# ---------------------------------------------------------------- arithmetic


def test_addition_and_subtraction_are_exact() -> None:
    # 0.1 + 0.2 = 0.3 exactly (no float drift); 0.3 - 0.00045 = 0.29955
    assert eur("0.1") + eur("0.2") == eur("0.3")
    assert eur("0.3") - eur("0.00045") == eur("0.29955")
    assert -eur("1.50") == eur("-1.50")


def test_multiplication_keeps_sub_minor_unit_precision() -> None:
    # 0.00045 * 412 = 0.18540 (the docstring's example): not rounded inside the ledger
    assert (eur("0.00045") * 412).amount == Decimal("0.18540")
    assert (412 * eur("0.00045")).amount == Decimal("0.18540")
    assert (eur("2.00") * Decimal("0.21")).amount == Decimal("0.42")


def test_multiplying_by_a_float_is_refused() -> None:
    with pytest.raises(MoneyError):
        eur("1.00") * 1.5  # type: ignore[operator]


def test_adding_different_currencies_raises_currency_mismatch() -> None:
    with pytest.raises(CurrencyMismatch):
        eur("1") + Money.of("1", "USD")
    with pytest.raises(CurrencyMismatch):
        eur("1") - Money.of("1", "USD")


def test_comparing_different_currencies_raises_currency_mismatch() -> None:
    with pytest.raises(CurrencyMismatch):
        _ = eur("1") < Money.of("2", "USD")
    with pytest.raises(CurrencyMismatch):
        _ = eur("1") <= Money.of("2", "USD")


def test_ordering_within_a_currency() -> None:
    assert eur("1.00") < eur("1.01")
    assert eur("1.00") <= eur("1.0")
    assert eur("2") > eur("1.99")
    assert not eur("1.01") < eur("1.01")


def test_equal_amounts_with_different_scale_are_equal() -> None:
    assert eur("1.0") == eur("1.00")
    assert eur("1") != Money.of("1", "USD")


def test_money_sum_adds_in_one_currency_and_refuses_mixed() -> None:
    # 1.10 + 2.205 + 0.001 = 3.306
    assert money_sum([eur("1.10"), eur("2.205"), eur("0.001")], "EUR") == eur("3.306")
    assert money_sum([], "JPY") == Money.zero("JPY")
    with pytest.raises(CurrencyMismatch):
        money_sum([eur("1"), Money.of("1", "USD")], "EUR")


# ---------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0.125", "0.13"),  # exactly half a cent: half-up
        ("0.124999", "0.12"),  # just below half: down
        ("-0.125", "-0.13"),  # ROUND_HALF_UP is away from zero for negatives
        ("0.115", "0.12"),  # banker's rounding would give 0.12 too; 0.125 tells them apart
        ("0.005", "0.01"),  # banker's rounding would give 0.00
        ("2.205", "2.21"),  # banker's rounding would give 2.20
        ("0.0049999", "0.00"),
        ("10", "10.00"),
    ],
)
def test_eur_rounds_half_up_to_cents(amount: str, expected: str) -> None:
    rounded = eur(amount).rounded()
    assert rounded.amount == Decimal(expected)
    assert rounded.amount.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("0.5", "1"), ("1.5", "2"), ("2.5", "3"), ("2.49", "2"), ("-2.5", "-3")],
)
def test_jpy_rounds_half_up_to_whole_yen(amount: str, expected: str) -> None:
    assert Money.of(amount, "JPY").rounded().amount == Decimal(expected)


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("0.0005", "0.001"), ("0.0004999", "0.000"), ("1.2345", "1.235"), ("-1.2345", "-1.235")],
)
def test_bhd_rounds_half_up_to_three_places(amount: str, expected: str) -> None:
    rounded = Money.of(amount, "BHD").rounded()
    assert rounded.amount == Decimal(expected)
    assert rounded.amount.as_tuple().exponent == -3


def test_str_shows_the_rounded_amount_and_currency() -> None:
    assert str(eur("0.18540")) == "0.19 EUR"
    assert str(Money.of("1234.5", "JPY")) == "1235 JPY"


amounts = st.decimals(
    min_value=Decimal("-1000000"), max_value=Decimal("1000000"), places=6, allow_nan=False
)


@given(amounts)
def test_rounding_is_idempotent_and_within_half_a_cent(amount: Decimal) -> None:
    once = eur(str(amount)).rounded()
    assert once.rounded() == once
    assert abs(once.amount - amount) <= Decimal("0.005")


@given(amounts)
def test_rounding_is_symmetric_around_zero(amount: Decimal) -> None:
    # half-up in Decimal rounds ties away from zero, so round(-x) == -round(x)
    assert eur(str(-amount)).rounded() == -eur(str(amount)).rounded()


# ---------------------------------------------------------------- money that moves


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("25", "EUR"), ("25.5", "EUR"), ("25.50", "EUR"), ("1000", "JPY"), ("1.250", "BHD")],
)
def test_money_that_moves_may_have_up_to_its_currency_decimal_places(
    amount: str, currency: str
) -> None:
    money = Money.of(amount, currency)
    assert check_minor_units(money) is money


@pytest.mark.parametrize(
    ("amount", "currency", "places"),
    [
        ("0.001", "EUR", 2),
        ("1.500", "EUR", 2),
        ("1.5", "JPY", 0),
        ("1.0", "JPY", 0),
        ("0.0001", "KWD", 3),
    ],
)
def test_money_that_moves_with_more_places_than_its_currency_is_refused_as_written(
    amount: str, currency: str, places: int
) -> None:
    with pytest.raises(SubMinorUnit) as refused:
        check_minor_units(Money.of(amount, currency))
    assert str(refused.value) == (
        f"amount {amount} {currency} has more than the {places} decimal places of {currency}"
    )
