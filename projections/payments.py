"""Money in as an auditor follows it: every payment, where each piece of it went, and
the credit an account holds.

Built from the stored payment events only (never from the aggregate):

- ``payments``: one row per ``PaymentReceived`` (a ``payment.succeeded``, or the
  operator's ``ledger mark-paid``) and per ``PaymentFailed``, keyed by the event
  that recorded it. ``reason`` says why the payment did not simply settle what it
  named: for a failure the bridge's reason, for money received the reason (some
  of) it was first held as credit (``overpayment``, ``unknown_reference``, ...),
  NULL when all of it went where it said. ``applied`` is what the payment paid at
  once, to any document; the rest was held (and may be allocated later, by a
  ``CreditApplied``: those allocations name the payment too).
- ``payment_allocations``: every allocation, of a payment or of held credit, in
  the order the event lists them: the payment its money came from, the document,
  the amount, and the reason the money was held first when it was allocated
  automatically (``from_credit``).
- ``payment_credit``: the credit each account holds after its last payment event,
  per currency and reason (each event carries the whole credit held afterwards,
  so an account's rows are replaced, never added to).

Every table names the account by ``account_uuid`` (as ``monthly_usage`` does):
the queries read the account id from ``balances``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.dispatch import singledispatchmethod

from ledger.contacts.account import ContactsAccount
from ledger.emails.account import Account
from projections.base import TableProjection
from projections.view import Change, Columns, TableView

#: The payment id of the operator's ``ledger mark-paid`` (ledger/contacts/proforma_payments.py).
MARK_PAID_PREFIX = "mark-paid:"


class PaymentsView(TableView):
    tables = ("payments", "payment_allocations", "payment_credit")
    ddl = (
        "CREATE TABLE IF NOT EXISTS {schema}.payments ("
        " account_uuid uuid NOT NULL, event_version bigint NOT NULL, payment_id text NOT NULL,"
        " kind text NOT NULL, at timestamptz NOT NULL, amount numeric NOT NULL,"
        " currency text NOT NULL, reference text, request_id text, reason text,"
        " retryable boolean, applied numeric, recorded_at timestamptz NOT NULL,"
        " PRIMARY KEY (account_uuid, event_version))",
        "CREATE INDEX IF NOT EXISTS payments_payment_idx ON {schema}.payments (payment_id)",
        "CREATE TABLE IF NOT EXISTS {schema}.payment_allocations ("
        " account_uuid uuid NOT NULL, event_version bigint NOT NULL, position int NOT NULL,"
        " payment_id text NOT NULL, reference text NOT NULL, amount numeric NOT NULL,"
        " currency text NOT NULL, from_credit text, at timestamptz NOT NULL,"
        " PRIMARY KEY (account_uuid, event_version, position))",
        "CREATE INDEX IF NOT EXISTS payment_allocations_reference_idx"
        " ON {schema}.payment_allocations (reference)",
        "CREATE TABLE IF NOT EXISTS {schema}.payment_credit ("
        " account_uuid uuid NOT NULL, currency text NOT NULL, reason text NOT NULL,"
        " amount numeric NOT NULL, pieces int NOT NULL,"
        " PRIMARY KEY (account_uuid, currency, reason))",
    )


_PAYMENTS = Columns(
    (
        ("account_uuid", "uuid"),
        ("event_version", "bigint"),
        ("payment_id", "text"),
        ("kind", "text"),
        ("at", "timestamptz"),
        ("amount", "numeric"),
        ("currency", "text"),
        ("reference", "text"),
        ("request_id", "text"),
        ("reason", "text"),
        ("retryable", "boolean"),
        ("applied", "numeric"),
        ("recorded_at", "timestamptz"),
    )
)
_INSERT_PAYMENTS = "INSERT INTO {schema}.payments SELECT * FROM {rows}"
_ALLOCATIONS = Columns(
    (
        ("account_uuid", "uuid"),
        ("event_version", "bigint"),
        ("position", "int"),
        ("payment_id", "text"),
        ("reference", "text"),
        ("amount", "numeric"),
        ("currency", "text"),
        ("from_credit", "text"),
        ("at", "timestamptz"),
    )
)
_INSERT_ALLOCATIONS = "INSERT INTO {schema}.payment_allocations SELECT * FROM {rows}"
_ACCOUNTS = Columns((("account_uuid", "uuid"),))
_DROP_CREDIT = (
    "DELETE FROM {schema}.payment_credit AS t USING {rows} WHERE t.account_uuid = b.account_uuid"
)
_CREDIT = Columns(
    (
        ("account_uuid", "uuid"),
        ("currency", "text"),
        ("reason", "text"),
        ("amount", "numeric"),
        ("pieces", "int"),
    )
)
_INSERT_CREDIT = "INSERT INTO {schema}.payment_credit SELECT * FROM {rows}"


def payment_kind(payment_id: str) -> str:
    return "mark_paid" if payment_id.startswith(MARK_PAID_PREFIX) else "succeeded"


class PaymentRows:
    """The batch's payments and allocations (appended: each is a new fact) and the
    credit each account holds after its last payment event (set: the last wins)."""

    def __init__(self) -> None:
        self.payments: list[tuple[Any, ...]] = []
        self.allocations: list[tuple[Any, ...]] = []
        self.credit: dict[UUID, tuple[Any, ...]] = {}

    def payment(self, event: Any, kind: str, reason: str | None, applied: Decimal | None) -> None:
        self.payments.append(
            (
                event.originator_id,
                event.originator_version,
                event.payment_id,
                kind,
                event.effective_at,
                event.amount.amount,
                event.amount.currency,
                event.reference,
                event.request_id,
                reason,
                getattr(event, "retryable", None),
                applied,
                event.timestamp,
            )
        )

    def received(self, event: Any) -> None:
        own = [a for a in event.allocations if a.payment_id == event.payment_id]
        applied = sum((a.amount.amount for a in own), Decimal(0))
        # One payment adds at most one piece of credit (docs/payments.md, "Allocation").
        reason = next((c.reason for c in event.unapplied), None)
        self.payment(event, payment_kind(event.payment_id), reason, applied)
        self.settled(event)

    def settled(self, event: Any) -> None:
        self.allocations.extend(
            (
                event.originator_id,
                event.originator_version,
                position,
                a.payment_id,
                a.reference,
                a.amount.amount,
                a.amount.currency,
                a.from_credit,
                event.effective_at,
            )
            for position, a in enumerate(event.allocations)
        )
        self.credit[event.originator_id] = tuple(event.credit)

    def changes(self) -> list[Change]:
        changes = []
        if self.payments:
            changes.append(_PAYMENTS.change(_INSERT_PAYMENTS, self.payments))
        if self.allocations:
            changes.append(_ALLOCATIONS.change(_INSERT_ALLOCATIONS, self.allocations))
        if self.credit:
            changes.append(_ACCOUNTS.change(_DROP_CREDIT, [(a,) for a in self.credit]))
            held = [
                row for account, credit in self.credit.items() for row in _held(account, credit)
            ]
            if held:
                changes.append(_CREDIT.change(_INSERT_CREDIT, held))
        return changes


def _held(account: UUID, credit: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The account's credit rows: summed per currency and reason."""
    grouped: dict[tuple[str, str], tuple[Decimal, int]] = {}
    for piece in credit:
        key = (piece.amount.currency, piece.reason)
        amount, pieces = grouped.get(key, (Decimal(0), 0))
        grouped[key] = (amount + piece.amount.amount, pieces + 1)
    return [(account, c, r, amount, n) for (c, r), (amount, n) in sorted(grouped.items())]


class PaymentsProjection(TableProjection[PaymentsView]):
    name = "payments"
    view_class = PaymentsView
    rows_class = PaymentRows

    @singledispatchmethod
    def fold(self, domain_event: Any, rows: PaymentRows) -> None:
        pass

    @fold.register(Account.PaymentReceived)
    @fold.register(ContactsAccount.PaymentReceived)
    def _(self, event: Any, rows: PaymentRows) -> None:
        rows.received(event)

    @fold.register(Account.CreditApplied)
    @fold.register(ContactsAccount.CreditApplied)
    def _(self, event: Any, rows: PaymentRows) -> None:
        rows.settled(event)

    @fold.register(Account.PaymentFailed)
    @fold.register(ContactsAccount.PaymentFailed)
    def _(self, event: Any, rows: PaymentRows) -> None:
        rows.payment(event, "failed", event.reason, None)
