"""Money: one exact type, currency checked on every operation.

Amounts are ``Decimal`` and never ``float``. Inside the ledger an amount may
carry more decimals than its currency (a per-email price of 0.00045 EUR times
412 emails is exactly 0.18540 EUR); it is rounded only where a customer sees it
as a document line, by :meth:`Money.rounded`: **half-up to the currency's minor
unit, once per line**. That is the one rounding rule of the ledger
(``docs/rounding.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ledger.errors import LedgerError

#: Decimal places of each currency's minor unit (ISO 4217). A currency missing
#: here is refused rather than guessed.
MINOR_UNITS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "PLN": 2,
    "CZK": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "CAD": 2,
    "AUD": 2,
    "JPY": 0,
    "KRW": 0,
    "BHD": 3,
    "KWD": 3,
}


class MoneyError(LedgerError):
    """A money value or operation that makes no sense."""


class CurrencyMismatch(MoneyError):
    def __init__(self, left: str, right: str) -> None:
        super().__init__(f"currency mismatch: {left} and {right}")


class UnknownCurrency(MoneyError):
    def __init__(self, currency: str) -> None:
        super().__init__(f"unknown currency {currency!r} (known: {', '.join(sorted(MINOR_UNITS))})")


class SubMinorUnit(MoneyError):
    def __init__(self, money: Money) -> None:
        places = MINOR_UNITS[money.currency]
        super().__init__(
            f"amount {money.amount} {money.currency} has more than the {places} decimal places"
            f" of {money.currency}"
        )


def check_currency(currency: str) -> str:
    if currency not in MINOR_UNITS:
        raise UnknownCurrency(currency)
    return currency


def check_minor_units(money: Money) -> Money:
    """Money that moves (a credit, a payment) has at most its currency's decimal
    places, as written: "0.001" or "1.500" EUR is refused, not rounded.

    Only computed amounts (usage at a per-email price) carry more decimals, and
    they are rounded where a customer sees them (:meth:`Money.rounded`).
    """
    exponent = money.amount.as_tuple().exponent
    if not isinstance(exponent, int) or -exponent > MINOR_UNITS[money.currency]:
        raise SubMinorUnit(money)
    return money


def to_decimal(value: object) -> Decimal:
    """Accept exact inputs only: a float has already lost the amount."""
    if isinstance(value, float):
        raise MoneyError("floats are refused for money; pass a string or Decimal")
    if isinstance(value, bool):
        raise MoneyError("a boolean is not an amount")
    if not isinstance(value, (Decimal, int, str)):
        raise MoneyError(f"not a decimal amount: {value!r}")
    try:
        result = Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise MoneyError(f"not a decimal amount: {value!r}") from exc
    if not result.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    return result


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        return cls(to_decimal(amount), check_currency(currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), check_currency(currency))

    def _check(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        return Money(self.amount * to_decimal(factor), self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._check(other)
        return self.amount <= other.amount

    def rounded(self) -> Money:
        """Half-up to the currency's minor unit: the ledger's one rounding rule."""
        exponent = Decimal(1).scaleb(-MINOR_UNITS[self.currency])
        return Money(self.amount.quantize(exponent, rounding=ROUND_HALF_UP), self.currency)

    @property
    def is_zero(self) -> bool:
        return self.amount == 0

    def __str__(self) -> str:
        return f"{self.rounded().amount} {self.currency}"


def money_sum(values: list[Money] | tuple[Money, ...], currency: str) -> Money:
    total = Money.zero(currency)
    for value in values:
        total = total + value
    return total
