"""What an account is owed: its documents as payments see them.

A receivable is a document someone must still pay, or has paid: an invoice
(by its number) or a proforma (by its id), with its total and what payments
have covered so far. Its state is derived, never stored beside the amounts,
so it cannot disagree with them: ``paid`` exactly when the allocations equal
the total, ``partially_paid`` when some but not all is covered, ``replaced``
when a plan change replaced an unpaid proforma (its replacement is due
instead), ``open`` otherwise.

``settled_by`` says who moves the money: ``collection`` (the ledger asks the
payment bridge to charge the card: a contacts account's proformas, seed 002)
or ``transfer`` (the customer pays by the due date: a postpay invoice, seed
000). It decides which dunning rule applies (``ledger.payments.dunning``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from ledger.errors import InvariantBroken
from ledger.money import Money, MoneyError, check_minor_units

ReceivableState = Literal["open", "partially_paid", "paid", "replaced"]
SettledBy = Literal["collection", "transfer"]


class PaymentInvariantBroken(InvariantBroken):
    """Money in that does not add up: a bug, never the input's fault."""


@dataclass(frozen=True, slots=True)
class Receivable:
    reference: str
    total: Money
    paid: Money
    issued_on: date
    due_on: date
    settled_by: SettledBy
    replaced_by: str | None = None

    @property
    def currency(self) -> str:
        return self.total.currency

    @property
    def state(self) -> ReceivableState:
        if self.replaced_by is not None:
            return "replaced"
        if self.paid == self.total:
            return "paid"
        return "open" if self.paid.is_zero else "partially_paid"

    @property
    def amount_due(self) -> Money:
        """A replaced proforma is due no more: its replacement is."""
        if self.replaced_by is not None:
            return Money.zero(self.currency)
        return self.total - self.paid

    @property
    def payable(self) -> bool:
        return self.state in ("open", "partially_paid")

    @property
    def age_key(self) -> tuple[date, str]:
        """Oldest first: by issue date, then reference (proforma ids and invoice
        numbers are zero-padded sequences, so within a day they sort as issued)."""
        return (self.issued_on, self.reference)

    def with_paid(self, amount: Money) -> Receivable:
        after = replace(self, paid=self.paid + amount)
        after.check_invariants()
        return after

    def check_invariants(self) -> None:
        if self.paid.currency != self.total.currency:
            raise PaymentInvariantBroken(f"{self.reference}: paid and total differ in currency")
        if self.paid.amount < 0 or self.total < self.paid:
            raise PaymentInvariantBroken(
                f"{self.reference}: paid {self.paid} outside 0..{self.total}"
            )
        check_whole(self.total, self.paid)


def check_whole(*amounts: Money) -> None:
    """Money that moves is in minor units: anything else here was computed wrong."""
    for amount in amounts:
        try:
            check_minor_units(amount)
        except MoneyError as exc:
            raise PaymentInvariantBroken(str(exc)) from exc
