"""The collection and dunning scheduler: asks for the money when it is due.

``collect`` visits the accounts ``ledger_schedule`` says are due at ``now``
(``PaymentsChased.next_chase_at``): each records a ``CollectionRequested`` per
due attempt and the due-date facts of its transfer-paid documents, and is saved
with its new schedule row in one transaction per chunk. The outbox publishes
the requests from stored history: a request recorded is never recorded again
(the attempt is ``requested``), so a scan run twice, or after a restart,
requests nothing twice. An idle scan is one indexed query.

Every writer of an account's chase (a consumer batch, the closer, ``ledger
mark-paid``, this scan) writes its schedule row with its events
(:func:`schedule_rows`), so the table is never behind the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from eventsourcing.persistence import IntegrityError

from commands.batch_rows import ScheduleRow
from commands.store import LedgerRecorder
from ledger.application import Ledger
from ledger.contacts.account import ContactsAccount
from ledger.emails.account import Account
from ledger.opening import account_uuid
from ledger.payments.policy import DunningPolicy
from ledger.payments.schedule import CollectionRequest
from ledger.periods import check_aware

log = structlog.get_logger(__name__)

#: The events after which an account's next chase may have moved (a document issued
#: or paid, a collection requested or answered, dunning changed). Usage and contact
#: events never move it: the hot path writes no schedule row for them.
RESCHEDULING = frozenset(
    {
        Account.DocumentIssued,
        Account.PaymentReceived,
        Account.CreditApplied,
        Account.DunningChanged,
        ContactsAccount.ProformaIssued,
        ContactsAccount.ProformaReplaced,
        ContactsAccount.ProformaPaid,
        ContactsAccount.PaymentReceived,
        ContactsAccount.CreditApplied,
        ContactsAccount.DunningChanged,
        ContactsAccount.CollectionRequested,
    }
)


def schedule_row(account: Account | ContactsAccount, policy: DunningPolicy) -> ScheduleRow:
    return ScheduleRow(account.account_id, account.next_chase_at(policy))


def reschedules(events: Iterable[Any]) -> bool:
    return any(type(event) in RESCHEDULING for event in events)


@dataclass
class Collected:
    """What a scan did: the accounts it visited, the requests it recorded (by account)
    and how many events in all (requests, dunning changes, sending blocked)."""

    visited: int = 0
    requests: list[tuple[str, CollectionRequest]] = field(default_factory=list)
    events: int = 0


def collect(
    ledger: Ledger,
    now: datetime,
    policy: DunningPolicy,
    *,
    every_account: bool = False,
    chunk_size: int = 200,
    attempts: int = 10,
) -> Collected:
    """``every_account``: visit all accounts, not only those the schedule says are due
    (the first scan after upgrading, whose history has no schedule rows yet)."""
    check_aware(now)
    recorder = ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    account_ids = recorder.account_ids() if every_account else recorder.due_accounts(now)
    collected = Collected()
    for start in range(0, len(account_ids), chunk_size):
        chunk = account_ids[start : start + chunk_size]
        _collect_accounts(ledger, chunk, now, policy, attempts, collected)
    if collected.events:
        log.info(
            "collected",
            accounts=collected.visited,
            requests=len(collected.requests),
            events=collected.events,
        )
    return collected


def _collect_accounts(
    ledger: Ledger,
    account_ids: Sequence[str],
    now: datetime,
    policy: DunningPolicy,
    attempts: int,
    collected: Collected,
) -> None:
    """One transaction for the chunk; a collision (a consumer saved one of them first)
    redoes it from the store, halved so that one busy account holds back no other."""
    for attempt in range(1, attempts + 1):
        # Another process may have written these accounts: start from the store.
        ledger.evict([account_uuid(a) for a in account_ids])
        try:
            _collect_chunk(ledger, account_ids, now, policy, collected)
            return
        except IntegrityError:
            log.warning("collect_conflict_retrying", accounts=len(account_ids), attempt=attempt)
            if len(account_ids) > 1:
                middle = len(account_ids) // 2
                _collect_accounts(ledger, account_ids[:middle], now, policy, attempts, collected)
                _collect_accounts(ledger, account_ids[middle:], now, policy, attempts, collected)
                return
    raise RuntimeError(f"could not collect for {account_ids[0]!r} after {attempts} attempts")


def _collect_chunk(
    ledger: Ledger,
    account_ids: Sequence[str],
    now: datetime,
    policy: DunningPolicy,
    collected: Collected,
) -> None:
    accounts = [ledger.get_account(a) for a in account_ids]
    requests: list[tuple[str, CollectionRequest]] = []
    events = 0
    for account in accounts:
        before = account.version
        requests.extend((account.account_id, r) for r in account.collect(now, policy))
        events += account.version - before
    # Every visited account's row is rewritten, changed or not: a row is never left due.
    ledger.save(*accounts, schedule=[schedule_row(a, policy) for a in accounts])
    collected.visited += len(accounts)
    collected.requests.extend(requests)
    collected.events += events
