"""Closing periods: gapless numbers under concurrent closers, snapshots, idempotent closes."""

from __future__ import annotations

import threading

from commands.closing import close_periods
from commands.handlers import BatchWork, apply_commands, save_batch
from commands.models import ClosePeriods, OpenAccount
from ledger.application import Ledger
from ledger.documents import Document
from tests.conftest import MakeServices
from tests.support import open_postpaid, utc


def test_concurrent_closers_allocate_gapless_unique_numbers(make_services: MakeServices) -> None:
    services = make_services()
    open_postpaid(services, 60)
    issued: list[list[Document]] = [[], []]
    errors: list[BaseException] = []
    command = ClosePeriods(as_of=utc(2026, 11, 1, 7))

    ledgers = [Ledger(env=services.env) for _ in (0, 1)]  # separate caches, as two processes

    def closer(slot: int) -> None:
        ledger = ledgers[slot]
        try:
            issued[slot] = close_periods(ledger, command, chunk_size=7)
        except BaseException as exc:
            errors.append(exc)
        finally:
            ledger.close()

    threads = [threading.Thread(target=closer, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    numbers = sorted(d.number for d in issued[0] + issued[1])
    # 60 accounts, one October document each, whoever issued it: 2026-000001 .. 2026-000060.
    assert numbers == [f"2026-{n:06d}" for n in range(1, 61)]
    # A second close at the same time has nothing left to do.
    assert services.close_periods(utc(2026, 11, 1, 7)) == []


def test_a_long_history_loads_from_a_snapshot_equal_to_a_full_replay(
    make_services: MakeServices,
) -> None:
    services = make_services()
    open_postpaid(services, 1)
    for month in range(11, 13):
        services.close_periods(utc(2026, month, 1, 7))
    for year in (2027, 2028, 2029, 2030, 2031):
        for month in range(1, 13):
            services.close_periods(utc(year, month, 1, 7))
    account_id = services.ledger.get_account("acct-000").id
    snapshots = list(services.ledger.snapshots.get(account_id)) if services.ledger.snapshots else []
    assert snapshots, "an account with 100+ events has a snapshot"

    class FullReplay(Ledger):
        name = "ledger"
        snapshotting_intervals = {}

    fresh, replaying = Ledger(env=services.env), FullReplay(env=services.env)
    try:
        from_snapshot = fresh.get_account("acct-000")
        replayed = replaying.get_account("acct-000")
        assert replaying.snapshots is None
        assert from_snapshot.version == replayed.version
        assert from_snapshot.documents == replayed.documents
        assert from_snapshot.balance == replayed.balance
        assert from_snapshot.closed_months == replayed.closed_months
        assert len(from_snapshot.documents) == 62
        # Taken from the aggregate in memory, the snapshot holds exactly the replayed state
        # (JSON gives its (time, plan) pairs back as lists).
        restored = {**vars(from_snapshot), "plans": [tuple(p) for p in from_snapshot.plans]}
        assert restored == vars(replayed)
    finally:
        fresh.close()
        replaying.close()


def test_a_contacts_account_loads_from_a_snapshot_equal_to_a_full_replay(
    make_services: MakeServices,
) -> None:
    """Three years of monthly renewals, emails beyond the allowance every month, and
    payments: 177 events, so the account is loaded from a snapshot."""
    from commands.closing import pay_proforma
    from commands.models import Origin, PayProforma, RecordEmailsSent, SentEmailItem
    from ledger.contacts.account import ContactsAccount

    services = make_services()
    ledger = services.ledger
    work = BatchWork(ledger, services.catalogue)
    opening = OpenAccount(
        account_id="shop",
        plan="contacts-basic",
        payment_mode="postpaid",
        currency="EUR",
        products=("chat",),
        at=utc(2026, 1, 31, 10),
    )
    apply_commands([opening], work)
    save_batch(work, None)
    for year in (2026, 2027, 2028):
        for month in range(1, 13):
            sent = utc(year, month, 2)
            work = BatchWork(ledger, services.catalogue)
            # No contacts: allowance 0, so each month's 10 emails are overage (0.01).
            emails = tuple(
                SentEmailItem(sent, "platform", Origin("test", f"{year}-{month}-{n}"))
                for n in range(10)
            )
            apply_commands([RecordEmailsSent(account_id="shop", emails=emails)], work)
            save_batch(work, None)
            for document in services.close_periods(utc(year, month, 2, 7)):
                pay_proforma(
                    ledger, PayProforma(account_id="shop", proforma_id=document.number, at=sent)
                )

    class FullReplay(Ledger):
        name = "ledger"
        snapshotting_intervals = {}

    fresh, replaying = Ledger(env=services.env), FullReplay(env=services.env)
    try:
        from_snapshot = fresh.get_account("shop")
        replayed = replaying.get_account("shop")
        assert isinstance(from_snapshot, ContactsAccount)
        assert isinstance(replayed, ContactsAccount)
        assert fresh.snapshots is not None
        assert list(fresh.snapshots.get(from_snapshot.id)), "a 177-event account has a snapshot"
        # Opened, 36 months of emails, 35 proformas (the closes of Feb 2026 to Dec 2028),
        # each with the start of its collection (a DunningChanged), 35 paid: each a
        # payment received (mark-paid's) and the final invoice.
        assert from_snapshot.version == replayed.version == 1 + 36 + 35 * 2 + 35 * 2
        names = ("invoices", "months", "subscription", "documented_months", "open_proformas")
        for name in (*names, "receivables", "credit", "collections", "notices"):
            assert getattr(from_snapshot, name) == getattr(replayed, name), name
        assert len(from_snapshot.invoices) == 35 and not from_snapshot.open_proformas
        assert vars(from_snapshot) == vars(replayed)
    finally:
        fresh.close()
        replaying.close()
