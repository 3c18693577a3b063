"""Loading many accounts at once, for the writers that visit hundreds a chunk (the close,
the collection scan): two reads a chunk instead of two an account."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from eventsourcing.application import project_aggregate
from eventsourcing.postgres import PostgresAggregateRecorder

from commands.store import LedgerRecorder
from ledger.application import Ledger
from ledger.contacts.account import ContactsAccount
from ledger.emails.account import Account
from ledger.errors import AccountNotFound
from ledger.opening import account_uuid


def load_accounts(
    ledger: Ledger, account_ids: Sequence[str]
) -> dict[str, Account | ContactsAccount]:
    """The accounts as stored (their latest snapshots, then the events after them),
    never from the cache: another process may have written them. Most of a close's
    time was reading them one by one."""
    recorder = ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder) and ledger.snapshots is not None
    snapshots = ledger.snapshots.recorder
    assert isinstance(snapshots, PostgresAggregateRecorder)
    uuids = {account_uuid(a): a for a in account_ids}
    records = recorder.latest_records(list(uuids), snapshots.events_table_name)
    accounts: dict[str, Account | ContactsAccount] = {}
    for originator_id, stored in itertools.groupby(records, key=lambda r: r.originator_id):
        account = project_aggregate(None, map(ledger.mapper.to_domain_event, stored))
        assert isinstance(account, Account | ContactsAccount)
        accounts[uuids[originator_id]] = account
    missing = [a for a in account_ids if a not in accounts]
    if missing:
        raise AccountNotFound(missing[0])
    return accounts
