"""``ledger_schedule``: when the scheduler next has something to do for each account.

One row per account (its next collection attempt due, or the next instant a
transfer-paid document becomes overdue or long overdue: ``PaymentsChased.next_chase_at``),
written in the same transaction as the events that moved it, so it is never
behind them. The scan reads the accounts due (an indexed range) instead of
loading every account: an idle scan costs one query.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier
from psycopg.sql import Literal as SQLLiteral

from commands.batch_rows import ScheduleRow


class ScheduleRecorder:
    """Mixed into :class:`commands.store.LedgerRecorder` (which has the datastore)."""

    datastore: PostgresDatastore

    @property
    def schedule_table(self) -> Composed:
        return SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier("ledger_schedule"))

    def schedule_statements(self) -> list[Composed]:
        table = self.schedule_table
        return [
            SQL(
                'CREATE TABLE IF NOT EXISTS {} (account_id text COLLATE "C" PRIMARY KEY, '
                "next_due_at timestamptz)"
            ).format(table),
            # Only when missing: CREATE INDEX IF NOT EXISTS takes its lock even when the
            # index exists, and would wait behind (or deadlock with) a writing batch.
            SQL(
                "DO $$ BEGIN IF to_regclass(quote_ident({schema})"
                " || '.ledger_schedule_due_idx') IS NULL THEN"
                " CREATE INDEX ledger_schedule_due_idx ON {table} (next_due_at)"
                " WHERE next_due_at IS NOT NULL; END IF; END $$"
            ).format(schema=SQLLiteral(self.datastore.schema), table=table),
        ]

    def _insert_schedule(self, curs: Cursor[DictRow], rows: Sequence[ScheduleRow]) -> None:
        if not rows:
            return
        latest = {row.account_id: row.next_due_at for row in rows}  # one row per account
        curs.execute(
            SQL(
                "INSERT INTO {} (account_id, next_due_at) "
                "SELECT * FROM unnest(%s::text[], %s::timestamptz[]) "
                "ON CONFLICT (account_id) DO UPDATE SET next_due_at = EXCLUDED.next_due_at"
            ).format(self.schedule_table),
            (list(latest), list(latest.values())),
        )

    def due_accounts(self, now: datetime) -> list[str]:
        """Accounts with something due at ``now``, the earliest first."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT account_id FROM {} WHERE next_due_at <= %s "
                    "ORDER BY next_due_at, account_id"
                ).format(self.schedule_table),
                (now,),
            )
            return [row["account_id"] for row in curs.fetchall()]
