"""Which document a payment settles, and what becomes unapplied credit.

A payment goes first to the document its ``reference`` names, up to what that
document still owes. Whatever it cannot apply there is never dropped and
never silently converted: it becomes the account's **unapplied credit**, held
with the reason it could not be applied (an overpayment, a document already
paid, a reference nobody issued, a replaced proforma, no reference at all,
another currency than the account's), and credit in the account's currency is
then allocated automatically to the account's open documents, oldest first.
Credit in another currency is held for an operator (no conversion). Credit
left when nothing is open waits for the next document (:func:`apply_credit`).

Every allocation names the payment its money came from, so an auditor can
follow each payment to the documents it paid. The invariants
(:func:`check_settlement`) hold for every result: allocations plus credit
held equal the money that came in, per currency; no document is paid beyond
its total; a document is paid exactly when its allocations equal its total;
and no credit that could be applied is left beside an open document.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from ledger.money import Money
from ledger.payments.receivables import PaymentInvariantBroken, Receivable, check_whole

UnappliedReason = Literal[
    "overpayment",
    "already_paid",
    "unknown_reference",
    "replaced_proforma",
    "other_currency",
    "no_reference",
]


@dataclass(frozen=True, slots=True)
class Payment:
    """Money received. ``payment_id`` is what every allocation of it names (the
    aggregate uses the CloudEvent's ``source`` + ``id``)."""

    payment_id: str
    amount: Money
    reference: str | None


@dataclass(frozen=True, slots=True)
class Credit:
    """Money of one payment held for the account, and why it was not applied."""

    payment_id: str
    amount: Money
    reason: UnappliedReason
    reference: str | None


@dataclass(frozen=True, slots=True)
class Allocation:
    """``amount`` of payment ``payment_id`` applied to document ``reference``.

    ``from_credit`` is None when the payment named the document, else the
    reason the money was first held as credit (it was allocated automatically).
    """

    payment_id: str
    reference: str
    amount: Money
    from_credit: UnappliedReason | None


@dataclass(frozen=True, slots=True)
class Settlement:
    """What one payment (or one pass of held credit) did: an aggregate records it
    as one event. ``unapplied`` is what this payment could not apply where it
    said, with the reason; ``credit`` is everything the account holds afterwards."""

    allocations: tuple[Allocation, ...]
    unapplied: tuple[Credit, ...]
    credit: tuple[Credit, ...]
    receivables: tuple[Receivable, ...]
    paid: tuple[str, ...]  # references this settlement paid in full


def apply_payment(
    receivables: Sequence[Receivable], credit: Sequence[Credit], payment: Payment, currency: str
) -> Settlement:
    """``payment`` for an account in ``currency`` that holds ``credit`` and owes ``receivables``."""
    check_whole(payment.amount)
    if payment.amount.amount <= 0:
        raise PaymentInvariantBroken(f"payment {payment.payment_id}: {payment.amount} is not > 0")
    by_reference = {r.reference: r for r in receivables}
    named = by_reference.get(payment.reference) if payment.reference is not None else None
    allocations: list[Allocation] = []
    rest = payment.amount
    reason: UnappliedReason
    if payment.amount.currency != currency:
        reason = "other_currency"
    elif payment.reference is None:
        reason = "no_reference"
    elif named is None:
        reason = "unknown_reference"
    elif named.state == "replaced":
        reason = "replaced_proforma"
    elif named.state == "paid":
        reason = "already_paid"
    else:
        reason = "overpayment"
        applied = min(rest, named.amount_due)
        allocations.append(Allocation(payment.payment_id, named.reference, applied, None))
        by_reference[named.reference] = named.with_paid(applied)
        rest = rest - applied
    unapplied = (
        () if rest.is_zero else (Credit(payment.payment_id, rest, reason, payment.reference),)
    )
    settlement = _allocate_credit(
        receivables, by_reference, [*credit, *unapplied], allocations, unapplied, currency
    )
    check_settlement(receivables, credit, (payment.amount,), settlement)
    return settlement


def apply_credit(
    receivables: Sequence[Receivable], credit: Sequence[Credit], currency: str
) -> Settlement:
    """Held credit onto open documents, oldest first: when a new document is issued."""
    settlement = _allocate_credit(
        receivables, {r.reference: r for r in receivables}, list(credit), [], (), currency
    )
    check_settlement(receivables, credit, (), settlement)
    return settlement


def _allocate_credit(
    before: Sequence[Receivable],
    by_reference: dict[str, Receivable],
    credit: list[Credit],
    allocations: list[Allocation],
    unapplied: tuple[Credit, ...],
    currency: str,
) -> Settlement:
    """Held credit, oldest piece first, onto open documents, oldest first."""
    open_documents = sorted(
        (r for r in by_reference.values() if r.payable), key=lambda r: r.age_key
    )
    held: list[Credit] = []
    for piece in credit:
        left = piece
        while left.amount.currency == currency and not left.amount.is_zero and open_documents:
            document = open_documents[0]
            applied = min(left.amount, document.amount_due)
            allocations.append(
                Allocation(left.payment_id, document.reference, applied, left.reason)
            )
            document = by_reference[document.reference] = document.with_paid(applied)
            if document.payable:
                open_documents[0] = document
            else:
                open_documents.pop(0)
            left = replace(left, amount=left.amount - applied)
        if not left.amount.is_zero:
            held.append(left)
    after = tuple(by_reference[r.reference] for r in before)
    return Settlement(
        allocations=tuple(allocations),
        unapplied=unapplied,
        credit=tuple(held),
        receivables=after,
        paid=tuple(
            new.reference
            for new, old in zip(after, before, strict=True)
            if new.state == "paid" and old.state != "paid"
        ),
    )


def _totals(amounts: Iterable[Money]) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for amount in amounts:
        sums[amount.currency] += amount.amount
    return {c: s for c, s in sums.items() if s}


def check_settlement(
    before: Sequence[Receivable],
    credit_before: Sequence[Credit],
    payments: Sequence[Money],
    settlement: Settlement,
) -> None:
    """The allocation invariants, checked on every result (a break is a bug)."""
    money_in = _totals([*payments, *(c.amount for c in credit_before)])
    money_out = _totals(
        [*(a.amount for a in settlement.allocations), *(c.amount for c in settlement.credit)]
    )
    if money_in != money_out:
        raise PaymentInvariantBroken(f"allocations + credit {money_out} != money in {money_in}")
    applied: dict[str, Money] = {}
    for allocation in settlement.allocations:
        if allocation.amount.amount <= 0:
            raise PaymentInvariantBroken(f"allocation of {allocation.amount} is not > 0")
        previous = applied.get(allocation.reference)
        applied[allocation.reference] = (
            allocation.amount if previous is None else previous + allocation.amount
        )
    for old, new in zip(before, settlement.receivables, strict=True):
        new.check_invariants()
        moved = new.paid - old.paid
        if moved != applied.pop(old.reference, Money.zero(old.currency)):
            raise PaymentInvariantBroken(
                f"{old.reference}: paid moved by {moved}, not its allocations"
            )
        if (new.state == "paid") != (new.replaced_by is None and new.paid == new.total):
            raise PaymentInvariantBroken(f"{new.reference}: state {new.state} with {new.paid} paid")
    if applied:
        raise PaymentInvariantBroken(
            f"allocations to documents that are not owed: {sorted(applied)}"
        )
    open_currencies = {r.currency for r in settlement.receivables if r.payable}
    if any(c.amount.currency in open_currencies for c in settlement.credit):
        raise PaymentInvariantBroken("credit left unapplied beside an open document")
