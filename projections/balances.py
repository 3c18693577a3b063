"""Current balance per account, with the sending-blocked flag.

``balance`` is exact (unrounded) as the ledger keeps it; reports round it
half-up to the currency's minor unit. ``credited - debited = balance`` holds
on every row (checked by ``ledger verify``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventsourcing.dispatch import singledispatchmethod

from ledger.contacts.account import ContactsAccount
from ledger.emails.account import Account
from projections.base import TableProjection
from projections.view import Change, TableView


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


def _update(event: Any, assignments: str, **params: Any) -> Change:
    return Change(
        f"UPDATE {{schema}}.balances SET {assignments}, updated_at = %(at)s,"
        " version = %(version)s WHERE account_uuid = %(id)s",
        {
            **params,
            "at": event.timestamp,
            "version": event.originator_version,
            "id": event.originator_id,
        },
    )


def _move(event: Any, credit: object = 0, debit: object = 0) -> Change:
    return _update(
        event,
        "credited = credited + %(credit)s, debited = debited + %(debit)s,"
        " balance = balance + %(credit)s - %(debit)s",
        credit=credit,
        debit=debit,
    )


def _opened(event: Any, payment_mode: str, plan_id: str) -> Change:
    return Change(
        "INSERT INTO {schema}.balances (account_id, account_uuid, currency, payment_mode,"
        " plan_id, timezone, opened_at, updated_at, version)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            event.account_id,
            event.originator_id,
            event.currency,
            payment_mode,
            plan_id,
            event.timezone,
            event.effective_at,
            event.timestamp,
            event.originator_version,
        ),
    )


class BalancesProjection(TableProjection[BalancesView]):
    name = "balances"
    view_class = BalancesView

    @singledispatchmethod
    def changes(self, domain_event: Any) -> Iterable[Change]:
        return ()

    @changes.register(Account.Opened)
    def _(self, event: Any) -> Iterable[Change]:
        yield _opened(event, event.payment_mode, event.plan.id)

    @changes.register(ContactsAccount.Opened)
    def _(self, event: Any) -> Iterable[Change]:
        # Billed per proforma, paid by card: no prepaid balance, never blocked.
        yield _opened(event, "postpaid", event.subscription.plan.id)

    @changes.register(ContactsAccount.ProformaIssued)
    @changes.register(ContactsAccount.ProformaReplaced)
    def _(self, event: Any) -> Iterable[Change]:
        # A scheduled plan change shows once its subscription has started.
        yield _update(event, "plan_id = %(plan)s", plan=event.subscription.plan.id)

    @changes.register(ContactsAccount.Closed)
    def _(self, event: Any) -> Iterable[Change]:
        yield _update(event, "status = 'closed'")

    @changes.register(Account.MonthOpened)
    def _(self, event: Any) -> Iterable[Change]:
        yield _move(event, debit=event.fee.amount)

    @changes.register(Account.CreditPurchased)
    def _(self, event: Any) -> Iterable[Change]:
        yield _move(event, credit=event.amount.amount)

    @changes.register(Account.EmailsRecorded)
    def _(self, event: Any) -> Iterable[Change]:
        yield _move(event, debit=event.charged.amount)

    @changes.register(Account.DocumentIssued)
    def _(self, event: Any) -> Iterable[Change]:
        yield _move(event, debit=event.document.balance_adjustment.amount)

    @changes.register(Account.SendingBlocked)
    def _(self, event: Any) -> Iterable[Change]:
        yield _update(event, "sending_blocked = true")

    @changes.register(Account.SendingUnblocked)
    def _(self, event: Any) -> Iterable[Change]:
        yield _update(event, "sending_blocked = false")

    @changes.register(Account.PlanChanged)
    def _(self, event: Any) -> Iterable[Change]:
        yield _update(event, "plan_id = %(plan)s", plan=event.plan.id)

    @changes.register(Account.Closed)
    def _(self, event: Any) -> Iterable[Change]:
        yield _update(event, "status = 'closed'")
