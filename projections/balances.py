"""Current balance per account, with the sending-blocked flag.

``balance`` is exact (unrounded) as the ledger keeps it; reports round it
half-up to the currency's minor unit. ``credited - debited = balance`` holds
on every row (checked by ``ledger verify``).
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
    tables = ("balances",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS {schema}.balances ("
        " account_id text PRIMARY KEY, account_uuid uuid NOT NULL UNIQUE, currency text NOT NULL,"
        " payment_mode text NOT NULL, plan_id text NOT NULL, timezone text NOT NULL,"
        " credited numeric NOT NULL DEFAULT 0, debited numeric NOT NULL DEFAULT 0,"
        " balance numeric NOT NULL DEFAULT 0, sending_blocked boolean NOT NULL DEFAULT false,"
        " status text NOT NULL DEFAULT 'open', opened_at timestamptz NOT NULL,"
        " updated_at timestamptz NOT NULL, version bigint NOT NULL)",
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


class BalanceRows:
    def __init__(self) -> None:
        self.accounts: dict[UUID, _Account] = {}

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
        return [_COLUMNS.change(_MERGE, rows)]


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
        rows.move(event, debit=event.document.balance_adjustment.amount)

    @fold.register(Account.SendingBlocked)
    def _(self, event: Any, rows: BalanceRows) -> None:
        rows.touch(event).blocked = True

    @fold.register(Account.SendingUnblocked)
    def _(self, event: Any, rows: BalanceRows) -> None:
        rows.touch(event).blocked = False

    @fold.register(Account.PlanChanged)
    def _(self, event: Any, rows: BalanceRows) -> None:
        rows.touch(event).plan_id = event.plan.id
