"""The scheduler's scan against the real store: it visits only the accounts
``ledger_schedule`` says are due, and the rows move with the events that move them.

By hand: ``acct-000`` .. ``acct-004`` on email-starter, postpaid, opened
2026-10-01; October's invoices (10.00 each) are issued at the close of
2026-11-01 07:00, due 2026-11-15, overdue from 2026-11-16 00:00Z, suspending on
2026-11-30 00:00Z.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from commands.store import LedgerRecorder
from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.support import open_postpaid, utc

OVERDUE = utc(2026, 11, 16)
SUSPENDING = utc(2026, 11, 30)


def _rows(services: Services) -> list[tuple[str, datetime | None]]:
    schema = services.settings.database_schema
    with psycopg.connect(services.database_url) as conn:
        return [
            (str(a), d)
            for a, d in conn.execute(
                f'SELECT account_id, next_due_at FROM "{schema}".ledger_schedule ORDER BY 1'
            ).fetchall()
        ]


def test_the_scan_visits_only_the_accounts_due_and_never_records_twice(
    make_services: MakeServices,
) -> None:
    services = make_services()
    open_postpaid(services, 5)
    assert _rows(services) == []  # an opening moves no chase: the hot path writes no row
    assert services.collect(OVERDUE).visited == 0
    invoices = services.close_periods(utc(2026, 11, 1, 7))
    assert len(invoices) == 5
    assert _rows(services) == [(f"acct-{i:03d}", OVERDUE) for i in range(5)]
    # idle: nothing due yet, no account loaded
    idle = services.collect(utc(2026, 11, 15, 23))
    assert (idle.visited, idle.events) == (0, 0)
    first = services.collect(OVERDUE)
    assert (first.visited, first.events, first.requests) == (5, 5, [])
    assert _rows(services) == [(f"acct-{i:03d}", SUSPENDING) for i in range(5)]
    # the same scan again, and from another process: nothing due, nothing recorded
    assert services.collect(OVERDUE).visited == 0
    restarted = make_services()
    assert restarted.collect(OVERDUE).visited == 0
    # suspending: a DunningChanged and a SendingBlocked each; then nothing is due
    late = restarted.collect(SUSPENDING)
    assert (late.visited, late.events) == (5, 10)
    assert _rows(services) == [(f"acct-{i:03d}", None) for i in range(5)]
    account = restarted.ledger.get_account("acct-000")  # the writer: its copy is current
    assert (account.dunning_state, sorted(account.notices)) == (
        "suspended",
        ["2026-000001/overdue", "2026-000001/suspended"],
    )


def test_collect_all_writes_the_rows_of_accounts_saved_before_the_table(
    make_services: MakeServices,
) -> None:
    services = make_services()
    open_postpaid(services, 2)
    services.close_periods(utc(2026, 11, 1, 7))
    recorder = services.ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    schema = services.settings.database_schema
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(f'DELETE FROM "{schema}".ledger_schedule')  # as after an upgrade
    assert services.collect(OVERDUE).visited == 0
    every = services.collect(utc(2026, 11, 2), every_account=True)
    assert (every.visited, every.events) == (2, 0)
    assert _rows(services) == [("acct-000", OVERDUE), ("acct-001", OVERDUE)]
