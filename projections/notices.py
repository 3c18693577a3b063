"""Payment-failure notices as the customer panel shows them, and each account's
dunning state.

Built from the ``DunningChanged`` events only (ledger/payments/notices.py decides
what they carry): each notice change carries the whole notice after it, so a
notice's row is *set* from its last change (one row per account and
``notice_id``, ``<reference>/<kind>``: opened, updated in place, resolved).
No row exists before the ledger recorded a notice, so a proforma issued and not
yet attempted, or a retry not due yet, shows none (seed 002).

``dunning`` holds one row per account that ever had a ``DunningChanged``: its
state after the last one (``current`` | ``past_due`` | ``suspended``), and the
last transition's instant, document and reason (``since``, ``reference``,
``reason``: kept from an earlier event when a later one changed no state). An
account without a row is ``current``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.dispatch import singledispatchmethod

from ledger.contacts.account import ContactsAccount
from ledger.emails.account import Account
from projections.base import TableProjection
from projections.view import Change, Columns, TableView


class NoticesView(TableView):
    tables = ("notices", "dunning")
    ddl = (
        "CREATE TABLE IF NOT EXISTS {schema}.notices ("
        " account_uuid uuid NOT NULL, notice_id text NOT NULL, account_id text NOT NULL,"
        " kind text NOT NULL, reference text NOT NULL, amount_due numeric NOT NULL,"
        " currency text NOT NULL, reason text NOT NULL, attempt int,"
        " next_attempt_at timestamptz, opened_at timestamptz NOT NULL,"
        " resolved_at timestamptz, state text NOT NULL, updated_at timestamptz NOT NULL,"
        " PRIMARY KEY (account_uuid, notice_id))",
        "CREATE INDEX IF NOT EXISTS notices_account_idx ON {schema}.notices (account_id)",
        "CREATE INDEX IF NOT EXISTS notices_open_idx ON {schema}.notices (opened_at)"
        " WHERE state = 'open'",
        "CREATE TABLE IF NOT EXISTS {schema}.dunning ("
        " account_uuid uuid PRIMARY KEY, account_id text NOT NULL UNIQUE, state text NOT NULL,"
        " since timestamptz, reference text, reason text, updated_at timestamptz NOT NULL)",
    )


_NOTICES = Columns(
    (
        ("account_uuid", "uuid"),
        ("notice_id", "text"),
        ("account_id", "text"),
        ("kind", "text"),
        ("reference", "text"),
        ("amount_due", "numeric"),
        ("currency", "text"),
        ("reason", "text"),
        ("attempt", "int"),
        ("next_attempt_at", "timestamptz"),
        ("opened_at", "timestamptz"),
        ("resolved_at", "timestamptz"),
        ("state", "text"),
        ("updated_at", "timestamptz"),
    )
)
_SET = ", ".join(f"{name} = EXCLUDED.{name}" for name, _ in _NOTICES.columns[2:])
_UPSERT_NOTICES = (
    "INSERT INTO {schema}.notices SELECT * FROM {rows}"
    f" ON CONFLICT (account_uuid, notice_id) DO UPDATE SET {_SET}"
)
_DUNNING = Columns(
    (
        ("account_uuid", "uuid"),
        ("account_id", "text"),
        ("state", "text"),
        ("since", "timestamptz"),
        ("reference", "text"),
        ("reason", "text"),
        ("updated_at", "timestamptz"),
    )
)
# A batch with no transition for the account keeps the last one it recorded.
_UPSERT_DUNNING = (
    "INSERT INTO {schema}.dunning AS t SELECT * FROM {rows}"
    " ON CONFLICT (account_uuid) DO UPDATE SET state = EXCLUDED.state,"
    " since = COALESCE(EXCLUDED.since, t.since),"
    " reference = CASE WHEN EXCLUDED.since IS NULL THEN t.reference ELSE EXCLUDED.reference END,"
    " reason = CASE WHEN EXCLUDED.since IS NULL THEN t.reason ELSE EXCLUDED.reason END,"
    " updated_at = EXCLUDED.updated_at"
)


@dataclass(slots=True)
class _Dunning:
    account_id: str
    state: str
    updated_at: datetime
    #: The batch's last transition (None: the batch made none for the account).
    transition: Any = None


class NoticeRows:
    """Per notice and per account, the last change of the batch (set, not added)."""

    def __init__(self) -> None:
        self.notices: dict[tuple[UUID, str], tuple[Any, ...]] = {}
        self.dunning: dict[UUID, _Dunning] = {}

    def changed(self, event: Any) -> None:
        account = event.originator_id
        for change in event.notice_changes:
            notice = change.notice
            self.notices[(account, notice.notice_id)] = (
                account,
                notice.notice_id,
                event.account_id,
                notice.kind,
                notice.reference,
                notice.amount_due.amount,
                notice.amount_due.currency,
                notice.reason,
                notice.attempt,
                notice.next_attempt_at,
                notice.opened_at,
                notice.resolved_at,
                notice.state,
                event.effective_at,
            )
        before = self.dunning.get(account)
        transition = event.transitions[-1] if event.transitions else None
        if transition is None and before is not None:
            transition = before.transition
        self.dunning[account] = _Dunning(
            event.account_id, event.state, event.effective_at, transition
        )

    def changes(self) -> list[Change]:
        changes = []
        if self.notices:
            changes.append(_NOTICES.change(_UPSERT_NOTICES, list(self.notices.values())))
        if self.dunning:
            rows = []
            for account, row in self.dunning.items():
                t = row.transition
                since, reference, reason = (t.at, t.reference, t.reason) if t else (None,) * 3
                rows.append(
                    (account, row.account_id, row.state, since, reference, reason, row.updated_at)
                )
            changes.append(_DUNNING.change(_UPSERT_DUNNING, rows))
        return changes


class NoticesProjection(TableProjection[NoticesView]):
    name = "notices"
    view_class = NoticesView
    rows_class = NoticeRows

    @singledispatchmethod
    def fold(self, domain_event: Any, rows: NoticeRows) -> None:
        pass

    @fold.register(Account.DunningChanged)
    @fold.register(ContactsAccount.DunningChanged)
    def _(self, event: Any, rows: NoticeRows) -> None:
        rows.changed(event)
