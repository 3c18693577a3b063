"""Closing billing months: documents for every account whose month has ended.

Accounts are closed in chunks; each chunk's accounts and the year's number
sequence are saved in one transaction, so numbers are gapless and each is
committed with its document. A chunk that collides with a concurrent writer
(a consumer billing the same account, another closer) is reloaded and redone.

A dry run builds the same documents, numbers included, and saves nothing: one
number allocator spans its chunks, since no chunk's sequence is stored.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import structlog
from eventsourcing.persistence import IntegrityError

from commands.accounts import load_accounts
from commands.collecting import schedule_row
from commands.models import ClosePeriods, PayProforma
from commands.numbers import NumberAllocator
from commands.store import LedgerRecorder
from ledger.application import Ledger
from ledger.contacts.account import ContactsAccount
from ledger.documents import Document
from ledger.emails.account import Account
from ledger.errors import CloseTimeInFuture, NegativeGrace, PlanNotAllowed
from ledger.opening import account_uuid
from ledger.payments.policy import DunningPolicy

log = structlog.get_logger(__name__)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


#: ``progress(accounts_done, accounts_total)``, called after each chunk.
Progress = Callable[[int, int], None]


def check_close(cmd: ClosePeriods, now: datetime, max_future_skew: timedelta) -> None:
    """Refuse a close a person asked for that would issue documents too early.

    Documents are numbered and irreversible: a close as of a time the clock has
    not reached (beyond the skew tolerated between machines) would document
    months that are still running, and so would a negative grace.
    """
    if cmd.grace < timedelta(0):
        raise NegativeGrace(f"-{-cmd.grace}")
    latest = now + max_future_skew
    if cmd.as_of > latest:
        raise CloseTimeInFuture(cmd.as_of.isoformat(), latest.isoformat(timespec="seconds"))


def close_periods(
    ledger: Ledger,
    cmd: ClosePeriods,
    chunk_size: int = 200,
    attempts: int = 10,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    policy: DunningPolicy | None = None,
) -> list[Document]:
    """``policy``: the catalogue's dunning policy, to write each account's next chase
    with its new documents (``ledger_schedule``); None: no scheduling."""
    issued: list[Document] = []
    recorder = ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    account_ids = recorder.account_ids()
    preview = NumberAllocator(ledger, fresh=True) if dry_run else None
    done = 0
    for chunk in _chunks(account_ids, chunk_size):
        if preview is None:
            issued.extend(_close_accounts(ledger, chunk, cmd, attempts, policy))
        else:
            issued.extend(_preview_accounts(ledger, chunk, cmd, preview))
        done += len(chunk)
        if progress:
            progress(done, len(account_ids))
    return issued


def preview_account(
    ledger: Ledger, account_id: str, cmd: ClosePeriods, allocator: NumberAllocator
) -> list[Document]:
    """What a close would issue for one account (an audit's question, account by account:
    one whose history cannot be replayed must not hide the others)."""
    return _preview_accounts(ledger, [account_id], cmd, allocator)


def _preview_accounts(
    ledger: Ledger, account_ids: list[str], cmd: ClosePeriods, allocator: NumberAllocator
) -> list[Document]:
    """The documents a close would issue, built on copies that are then forgotten."""
    uuids = [account_uuid(a) for a in account_ids]
    ledger.evict(uuids)
    try:
        return _close_chunk(ledger, account_ids, cmd, allocator, save=False)
    finally:
        ledger.evict(uuids)  # a cache without deep copies would keep the changed aggregates


def _close_accounts(
    ledger: Ledger,
    account_ids: list[str],
    cmd: ClosePeriods,
    attempts: int,
    policy: DunningPolicy | None,
) -> list[Document]:
    """Close accounts in one transaction; on a collision, the two halves separately.

    A collision means another writer (a consumer billing one of them, another
    closer) saved first. Halving isolates the busy account in a few steps, so
    one busy account does not hold back the close of the others.
    """
    for attempt in range(1, attempts + 1):
        # Consumers write to these accounts through other Ledger instances: a cached
        # copy may be stale without any collision to reveal it (e.g. a closed account
        # whose late usage arrived), so each attempt starts from the store.
        ledger.evict([account_uuid(a) for a in account_ids])
        allocator = NumberAllocator(ledger, fresh=True)  # a consumer may have drawn since
        try:
            return _close_chunk(ledger, account_ids, cmd, allocator, policy=policy)
        except IntegrityError:
            log.warning("close_conflict_retrying", accounts=len(account_ids), attempt=attempt)
            ledger.evict([s.id for s in allocator.sequences.values()])
            if len(account_ids) > 1:
                middle = len(account_ids) // 2
                return _close_accounts(
                    ledger, account_ids[:middle], cmd, attempts, policy
                ) + _close_accounts(ledger, account_ids[middle:], cmd, attempts, policy)
    raise RuntimeError(f"could not close {account_ids[0]!r} after {attempts} attempts")


def _close_chunk(
    ledger: Ledger,
    account_ids: list[str],
    cmd: ClosePeriods,
    allocator: NumberAllocator,
    *,
    save: bool = True,
    policy: DunningPolicy | None = None,
) -> list[Document]:
    touched: list[Account | ContactsAccount] = []
    documents: list[Document] = []
    recorder = ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    accounts = load_accounts(ledger, account_ids)
    for account_id in account_ids:
        account = accounts[account_id]
        if isinstance(account, ContactsAccount):
            # Proformas take no number (a final invoice does: one that held credit paid
            # in full); contacts are counted as of each renewal instant.
            issued = account.close_periods(
                cmd.as_of,
                cmd.grace,
                functools.partial(recorder.billable_count, account_id),
                allocator,
            )
        else:
            issued = account.close_periods(cmd.as_of, cmd.grace, allocator)
        if issued:
            touched.append(account)
            documents.extend(issued)
    if touched and save:
        schedule = [] if policy is None else [schedule_row(a, policy) for a in touched]
        ledger.save(*touched, *allocator.commit(), schedule=schedule)
        log.info("periods_closed", accounts=len(touched), documents=len(documents))
    return documents


def pay_proforma(
    ledger: Ledger, cmd: PayProforma, policy: DunningPolicy | None = None, attempts: int = 10
) -> Document:
    """The final invoice of a paid proforma, saved with its number in one transaction.

    ``ContactsAccount.pay`` receives what the proforma still owes through the
    aggregate's one payment path (``receive_payment``, as a ``payment.succeeded``
    does in a consumer batch), so an operator's payment is allocated and recorded
    exactly like one from the payment bridge."""
    for attempt in range(1, attempts + 1):
        ledger.evict([account_uuid(cmd.account_id)])
        account = ledger.get_account(cmd.account_id)
        if not isinstance(account, ContactsAccount):
            raise PlanNotAllowed(f"account {cmd.account_id!r} is billed by emails: no proformas")
        allocator = NumberAllocator(ledger, fresh=True)  # a consumer may have drawn since
        invoice = account.pay(cmd.proforma_id, cmd.at, allocator)
        schedule = [] if policy is None else [schedule_row(account, policy)]
        try:
            ledger.save(account, *allocator.commit(), schedule=schedule)
        except IntegrityError:
            log.warning("payment_conflict_retrying", account=cmd.account_id, attempt=attempt)
            ledger.evict([s.id for s in allocator.sequences.values()])
            continue
        log.info(
            "proforma_paid",
            account=cmd.account_id,
            proforma=cmd.proforma_id,
            invoice=invoice.number,
        )
        return invoice
    raise RuntimeError(
        f"could not record the payment of {cmd.proforma_id} after {attempts} attempts"
    )
