"""What an account holds of money in: its receivables and its unapplied credit.

Both account aggregates (:class:`ledger.emails.account.Account`,
:class:`ledger.contacts.account.ContactsAccount`) inherit :class:`PaymentsHeld`:
its public methods decide with :mod:`ledger.payments.allocation` (nothing is
re-implemented here) and each aggregate records the decision with its own
``@event`` methods (``PaymentReceived``, ``CreditApplied``),
whose bodies only call the bookkeeping below (:meth:`PaymentsHeld._settled`).

A receivable is made from the document as issued (:func:`owed`): its total, its
issue and due dates are the document's, decided when it was built, so the
existing issue events can keep the receivables on every replay without a rule
of their own. A payment never changes the account's prepaid balance: a top-up
is ``account.credit-purchased``; money received for documents is the
receivables' (docs/payments.md, "Prepaid accounts and payments").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.documents import Document
from ledger.errors import InvalidAmount
from ledger.money import Money, check_minor_units
from ledger.payments.allocation import (
    Allocation,
    Credit,
    Payment,
    Settlement,
    apply_credit,
    apply_payment,
)
from ledger.payments.receivables import Receivable, SettledBy
from ledger.periods import check_aware


def owed(document: Document, settled_by: SettledBy, *, paid: bool = False) -> Receivable:
    """``document`` as payments see it; ``paid``: settled as it was issued (a receipt,
    from the prepaid balance; a proforma's final invoice, by the proforma's payment)."""
    zero = Money.zero(document.currency)
    return Receivable(
        reference=document.number,
        total=document.total,
        paid=document.total if paid else zero,
        issued_on=document.issued_on,
        due_on=document.due_on or document.issued_on,
        settled_by=settled_by,
    )


@dataclass(frozen=True, slots=True)
class PaymentReport:
    """One payment (or failed attempt) as reported: by the payment bridge, or by an
    operator (``ledger mark-paid``). ``payment_id`` is what every allocation of its
    money names; ``request_id`` the collection request it answers, if any."""

    payment_id: str
    amount: Money
    reference: str | None
    request_id: str | None
    at: datetime

    @classmethod
    def of(
        cls,
        payment_id: str,
        amount: Decimal,
        currency: str,
        reference: str | None,
        request_id: str | None,
        at: datetime,
    ) -> PaymentReport:
        """The rule of ``account.credit-purchased``'s amount: > 0, in the minor units
        of the payment's own currency (refused otherwise: a dead letter)."""
        money = check_minor_units(Money.of(amount, currency))
        if money.amount <= 0:
            raise InvalidAmount(f"a payment must be positive, got {money}")
        return cls(payment_id, money, reference, request_id, check_aware(at))

    def event_fields(self) -> dict[str, Any]:
        """What the aggregate's payment events record of it."""
        return {
            "effective_at": self.at,
            "payment_id": self.payment_id,
            "amount": self.amount,
            "reference": self.reference,
            "request_id": self.request_id,
        }


class PaymentsHeld:
    """Queries, decisions and bookkeeping over the state below (set by ``Opened``)."""

    account_id: str
    currency: str
    version: int
    receivables: dict[str, Receivable]
    #: A list, not a tuple: stored state (snapshots) gives JSON arrays back as lists.
    credit: list[Credit]
    # The aggregate's own events (each class records its own ``PaymentReceived``, ...).
    _payment_received: Callable[..., None]
    _credit_applied: Callable[..., None]

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """An aggregate snapshot from before payments (class version 1): no credit
        held, and no receivable known (documents it lists are not payable by
        reference: money naming one is held as ``unknown_reference`` credit)."""
        state.setdefault("receivables", {})
        state.setdefault("credit", [])

    @property
    def amount_owed(self) -> Money:
        """What the account's payable documents still owe."""
        return Money(
            sum((r.amount_due.amount for r in self.receivables.values() if r.payable), Decimal(0)),
            self.currency,
        )

    @property
    def unapplied_credit(self) -> Money:
        """Credit held in the account's currency (other currencies wait for an operator)."""
        return Money(
            sum(
                (c.amount.amount for c in self.credit if c.amount.currency == self.currency),
                Decimal(0),
            ),
            self.currency,
        )

    def settle_payment(self, report: PaymentReport) -> Settlement:
        """Where a payment's money goes (:func:`apply_payment`); nothing is recorded."""
        payment = Payment(report.payment_id, report.amount, report.reference)
        return apply_payment(tuple(self.receivables.values()), self.credit, payment, self.currency)

    def _record_payment(self, settlement: Settlement, report: PaymentReport) -> int:
        """One event for the payment, carrying what :meth:`settle_payment` decided."""
        self._payment_received(
            **report.event_fields(),
            allocations=settlement.allocations,
            unapplied=settlement.unapplied,
            credit=settlement.credit,
        )
        return self.version

    def apply_held_credit(self, at: datetime) -> Settlement | None:
        """Held credit onto documents issued since (:func:`apply_credit`), recorded as
        one ``CreditApplied``; None (and no event) when it pays nothing."""
        if not any(c.amount.currency == self.currency for c in self.credit):
            return None
        settlement = apply_credit(tuple(self.receivables.values()), self.credit, self.currency)
        if not settlement.allocations:
            return None
        self._credit_applied(
            effective_at=check_aware(at),
            allocations=settlement.allocations,
            credit=settlement.credit,
        )
        return settlement

    # ------------------------------------------------------------------ bookkeeping

    def _settled(self, allocations: tuple[Allocation, ...], credit: tuple[Credit, ...]) -> None:
        """What a recorded settlement did (run by the event bodies, on every replay)."""
        for allocation in allocations:
            receivable = self.receivables[allocation.reference]
            self.receivables[allocation.reference] = receivable.with_paid(allocation.amount)
        self.credit = list(credit)

    def _paid_in_full(self, reference: str) -> None:
        """A document settled outside a payment event (a final invoice recorded before
        payments were events): paid as a whole."""
        receivable = self.receivables.get(reference)
        if receivable is not None and receivable.paid != receivable.total:
            self.receivables[reference] = replace(receivable, paid=receivable.total)
