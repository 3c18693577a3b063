"""Current balance per account, with the sending-blocked flag, what it owes and
the credit it holds.

``balance`` is exact (unrounded) as the ledger keeps it; reports round it
half-up to the currency's minor unit. ``credited - debited = balance`` holds
on every row (checked by ``ledger verify``). Payments never move the balance
(docs/payments.md): ``amount_owed`` is what the account's open documents still
owe (``owed_documents``, one row per payable document), ``unapplied_credit``
the money it holds in its own currency; ``unapplied_credit`` the table lists
every piece of credit held, in any currency, with the reason it was held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.dispatch import singledispatchmethod

from ledger.contacts.account import ContactsAccount
from ledger.emails.account import Account
from projections.base import AccountChange, TableProjection, account_change
from projections.view import Change, Columns, TableView


class BalancesView(TableView):
    tables = ("balances", "owed_documents", "unapplied_credit")
    ddl = (
        "CREATE TABLE IF NOT EXISTS {schema}.balances ("
        " account_id text PRIMARY KEY, account_uuid uuid NOT NULL UNIQUE, currency text NOT NULL,"
        " payment_mode text NOT NULL, plan_id text NOT NULL, timezone text NOT NULL,"
        " credited numeric NOT NULL DEFAULT 0, debited numeric NOT NULL DEFAULT 0,"
        " balance numeric NOT NULL DEFAULT 0, sending_blocked boolean NOT NULL DEFAULT false,"
        " status text NOT NULL DEFAULT 'open', opened_at timestamptz NOT NULL,"
        " updated_at timestamptz NOT NULL, version bigint NOT NULL,"
        " amount_owed numeric NOT NULL DEFAULT 0, unapplied_credit numeric NOT NULL DEFAULT 0)",
        # Added with payments (a table made before has nothing owed known: rebuild it).
        # Only when missing: ALTER TABLE takes its lock even when there is nothing to add.
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_attribute"
        " WHERE attrelid = '{schema}.balances'::regclass AND attname = 'amount_owed'"
        " AND NOT attisdropped) THEN"
        " ALTER TABLE {schema}.balances ADD COLUMN amount_owed numeric NOT NULL DEFAULT 0,"
        " ADD COLUMN unapplied_credit numeric NOT NULL DEFAULT 0;"
        " END IF; END $$",
        "CREATE TABLE IF NOT EXISTS {schema}.owed_documents ("
        " number text PRIMARY KEY, account_uuid uuid NOT NULL, amount_due numeric NOT NULL)",
        "CREATE INDEX IF NOT EXISTS owed_documents_account_idx"
        " ON {schema}.owed_documents (account_uuid)",
        "CREATE TABLE IF NOT EXISTS {schema}.unapplied_credit ("
        " account_uuid uuid NOT NULL, position int NOT NULL, payment_id text NOT NULL,"
        " amount numeric NOT NULL, currency text NOT NULL, reason text NOT NULL, reference text,"
        " PRIMARY KEY (account_uuid, position))",
    )


@dataclass(slots=True)
class _Account(AccountChange):
    """One account's change in a batch: amounts added, values set (None: unchanged)."""

    opened: tuple[str, str, str, str, datetime] | None = None
    credit: Decimal = Decimal(0)
    debit: Decimal = Decimal(0)
    plan_id: str | None = None
    status: str | None = None
    blocked: bool | None = None
    #: What it owes or holds changed: both are summed again from their tables.
    payments: bool = False
    #: The credit held after the batch (None: unchanged).
    credit_held: tuple[Any, ...] | None = None


_COLUMNS = Columns(
    (
        ("account_uuid", "uuid"),
        ("account_id", "text"),
        ("currency", "text"),
        ("payment_mode", "text"),
        ("timezone", "text"),
        ("opened_at", "timestamptz"),
        ("credit", "numeric"),
        ("debit", "numeric"),
        ("plan_id", "text"),
        ("status", "text"),
        ("blocked", "boolean"),
        ("updated_at", "timestamptz"),
        ("version", "bigint"),
    )
)
# An account opened in the batch is inserted with the batch's whole effect; the
# others get it added to their row (an UPDATE of a row that is not there does nothing).
_MERGE = (
    "MERGE INTO {schema}.balances AS t USING {rows} ON t.account_uuid = b.account_uuid"
    " WHEN MATCHED THEN UPDATE SET credited = t.credited + b.credit,"
    " debited = t.debited + b.debit, balance = t.balance + b.credit - b.debit,"
    " plan_id = COALESCE(b.plan_id, t.plan_id), status = COALESCE(b.status, t.status),"
    " sending_blocked = COALESCE(b.blocked, t.sending_blocked),"
    " updated_at = b.updated_at, version = b.version"
    " WHEN NOT MATCHED AND b.account_id IS NOT NULL THEN INSERT (account_id, account_uuid,"
    " currency, payment_mode, plan_id, timezone, credited, debited, balance, sending_blocked,"
    " status, opened_at, updated_at, version) VALUES (b.account_id, b.account_uuid, b.currency,"
    " b.payment_mode, b.plan_id, b.timezone, b.credit, b.debit, b.credit - b.debit,"
    " COALESCE(b.blocked, false), COALESCE(b.status, 'open'), b.opened_at, b.updated_at,"
    " b.version)"
)


_OWED = Columns((("number", "text"), ("account_uuid", "uuid"), ("amount_due", "numeric")))
_INSERT_OWED = "INSERT INTO {schema}.owed_documents SELECT * FROM {rows}"
_PAID = Columns((("number", "text"), ("amount", "numeric")))
_PAY_OWED = (
    "UPDATE {schema}.owed_documents AS t SET amount_due = t.amount_due - b.amount"
    " FROM {rows} WHERE t.number = b.number"
)
_NUMBERS = Columns((("number", "text"),))
_SETTLE_OWED = "DELETE FROM {schema}.owed_documents AS t USING {rows} WHERE t.number = b.number"
_ACCOUNTS = Columns((("account_uuid", "uuid"),))
_DROP_PAID = (
    "DELETE FROM {schema}.owed_documents AS t USING {rows}"
    " WHERE t.account_uuid = b.account_uuid AND t.amount_due = 0"
)
_DROP_CREDIT = (
    "DELETE FROM {schema}.unapplied_credit AS t USING {rows} WHERE t.account_uuid = b.account_uuid"
)
_CREDIT = Columns(
    (
        ("account_uuid", "uuid"),
        ("position", "int"),
        ("payment_id", "text"),
        ("amount", "numeric"),
        ("currency", "text"),
        ("reason", "text"),
        ("reference", "text"),
    )
)
_INSERT_CREDIT = "INSERT INTO {schema}.unapplied_credit SELECT * FROM {rows}"
_SUM_PAYMENTS = (
    "UPDATE {schema}.balances AS t SET amount_owed = COALESCE((SELECT sum(o.amount_due)"
    " FROM {schema}.owed_documents AS o WHERE o.account_uuid = t.account_uuid), 0),"
    " unapplied_credit = COALESCE((SELECT sum(c.amount) FROM {schema}.unapplied_credit AS c"
    " WHERE c.account_uuid = t.account_uuid AND c.currency = t.currency), 0)"
    " FROM {rows} WHERE t.account_uuid = b.account_uuid"
)


class BalanceRows:
    def __init__(self) -> None:
        self.accounts: dict[UUID, _Account] = {}
        #: Payable documents issued in the batch: number -> [account, amount due].
        self.owed: dict[str, list[Any]] = {}
        #: Allocations to payable documents stored before the batch, per document.
        self.paid: dict[str, Decimal] = {}
        #: Documents stored before the batch that were paid in full or replaced.
        self.settled: set[str] = set()

    def owe(self, event: Any, number: str, total: Decimal) -> None:
        self.touch(event).payments = True
        if total:
            self.owed[number] = [event.originator_id, total]

    def pay(self, event: Any, allocations: Any, credit: tuple[Any, ...]) -> None:
        row = self.touch(event)
        row.payments, row.credit_held = True, credit
        for allocation in allocations:
            number, amount = allocation.reference, allocation.amount.amount
            issued = self.owed.get(number)
            if issued is not None:
                issued[1] -= amount
            else:
                self.paid[number] = self.paid.get(number, Decimal(0)) + amount

    def settle(self, event: Any, number: str) -> None:
        """Paid in full or replaced: nothing is due on it any more."""
        self.touch(event).payments = True
        if self.owed.pop(number, None) is None:
            self.settled.add(number)

    def _payment_changes(self) -> list[Change]:
        changes = []
        owed = [(n, account, due) for n, (account, due) in self.owed.items() if due]
        if owed:
            changes.append(_OWED.change(_INSERT_OWED, owed))
        if self.paid:
            changes.append(_PAID.change(_PAY_OWED, list(self.paid.items())))
        if self.settled:
            changes.append(_NUMBERS.change(_SETTLE_OWED, [(n,) for n in self.settled]))
        touched = [(a,) for a, row in self.accounts.items() if row.payments]
        if touched:
            changes.append(_ACCOUNTS.change(_DROP_PAID, touched))
        held = {
            a: row.credit_held for a, row in self.accounts.items() if row.credit_held is not None
        }
        if held:
            changes.append(_ACCOUNTS.change(_DROP_CREDIT, [(a,) for a in held]))
            credit = [
                (
                    a,
                    position,
                    c.payment_id,
                    c.amount.amount,
                    c.amount.currency,
                    c.reason,
                    c.reference,
                )
                for a, pieces in held.items()
                for position, c in enumerate(pieces)
            ]
            if credit:
                changes.append(_CREDIT.change(_INSERT_CREDIT, credit))
        return changes

    def touch(self, event: Any) -> _Account:
        return account_change(self.accounts, event, _Account)

    def opened(self, event: Any, payment_mode: str, plan_id: str) -> None:
        row = self.touch(event)
        row.opened = (
            event.account_id,
            event.currency,
            payment_mode,
            event.timezone,
            event.effective_at,
        )
        row.plan_id = plan_id

    def move(self, event: Any, credit: Decimal = Decimal(0), debit: Decimal = Decimal(0)) -> None:
        row = self.touch(event)
        row.credit += credit
        row.debit += debit

    def changes(self) -> list[Change]:
        if not self.accounts:
            return []
        not_opened = (None, None, None, None, None)
        rows = [
            (
                account,
                *(row.opened or not_opened),
                row.credit,
                row.debit,
                row.plan_id,
                row.status,
                row.blocked,
                row.updated_at,
                row.version,
            )
            for account, row in self.accounts.items()
        ]
        changes = [*self._payment_changes(), _COLUMNS.change(_MERGE, rows)]
        touched = [(a,) for a, row in self.accounts.items() if row.payments]
        if touched:  # after the merge: an account opened in the batch has its row
            changes.append(_ACCOUNTS.change(_SUM_PAYMENTS, touched))
        return changes


class BalancesProjection(TableProjection[BalancesView]):
    name = "balances"
    view_class = BalancesView
    rows_class = BalanceRows

    @singledispatchmethod
    def fold(self, domain_event: Any, rows: BalanceRows) -> None:
        pass

    @fold.register(Account.Opened)
    def _(self, event: Any, rows: BalanceRows) -> None:
        rows.opened(event, event.payment_mode, event.plan.id)

    @fold.register(ContactsAccount.Opened)
    def _(self, event: Any, rows: BalanceRows) -> None:
        # Billed per proforma, paid by card: no prepaid balance, never blocked.
        rows.opened(event, "postpaid", event.subscription.plan.id)

    @fold.register(ContactsAccount.ProformaIssued)
    @fold.register(ContactsAccount.ProformaReplaced)
    def _(self, event: Any, rows: BalanceRows) -> None:
        # A scheduled plan change shows once its subscription has started.
        rows.touch(event).plan_id = event.subscription.plan.id
        replaced = getattr(event, "replaced", None)  # a ProformaReplaced: nothing due on it
        if replaced is not None:
            rows.settle(event, replaced)
        document = event.proforma.document
        rows.owe(event, document.number, document.total.amount)

    @fold.register(ContactsAccount.ProformaPaid)
    def _(self, event: Any, rows: BalanceRows) -> None:
        rows.settle(event, event.proforma)

    @fold.register(Account.PaymentReceived)
    @fold.register(Account.CreditApplied)
    @fold.register(ContactsAccount.PaymentReceived)
    @fold.register(ContactsAccount.CreditApplied)
    def _(self, event: Any, rows: BalanceRows) -> None:
        rows.pay(event, event.allocations, event.credit)

    @fold.register(ContactsAccount.Closed)
    @fold.register(Account.Closed)
    def _(self, event: Any, rows: BalanceRows) -> None:
        rows.touch(event).status = "closed"

    @fold.register(Account.MonthOpened)
    def _(self, event: Any, rows: BalanceRows) -> None:
        rows.move(event, debit=event.fee.amount)

    @fold.register(Account.CreditPurchased)
    def _(self, event: Any, rows: BalanceRows) -> None:
        rows.move(event, credit=event.amount.amount)

    @fold.register(Account.EmailsRecorded)
    def _(self, event: Any, rows: BalanceRows) -> None:
        rows.move(event, debit=event.charged.amount)

    @fold.register(Account.DocumentIssued)
    def _(self, event: Any, rows: BalanceRows) -> None:
        document = event.document
        rows.move(event, debit=document.balance_adjustment.amount)
        if document.kind == "invoice":  # a receipt was settled from the prepaid balance
            rows.owe(event, document.number, document.total.amount)

    @fold.register(Account.SendingBlocked)
    def _(self, event: Any, rows: BalanceRows) -> None:
        rows.touch(event).blocked = True

    @fold.register(Account.SendingUnblocked)
    def _(self, event: Any, rows: BalanceRows) -> None:
        rows.touch(event).blocked = False

    @fold.register(Account.PlanChanged)
    def _(self, event: Any, rows: BalanceRows) -> None:
        rows.touch(event).plan_id = event.plan.id
