"""Closing periods: gapless numbers under concurrent closers, snapshots, idempotent closes."""

from __future__ import annotations

import threading

from commands.closing import close_periods
from commands.handlers import BatchWork, apply_commands, save_batch
from commands.models import ClosePeriods, OpenAccount
from ledger.application import Ledger
from ledger.documents import Document
from tests.conftest import MakeServices
from tests.support import utc


def _open_accounts(ledger: Ledger, services_catalogue: object, count: int) -> None:
    work = BatchWork(ledger, services_catalogue)  # type: ignore[arg-type]
    apply_commands(
        [
            OpenAccount(
                account_id=f"acct-{i:03d}",
                plan="email-starter",
                payment_mode="postpaid",
                currency="EUR",
                at=utc(2026, 10, 1),
            )
            for i in range(count)
        ],
        work,
    )
    save_batch(work, None)


def test_concurrent_closers_allocate_gapless_unique_numbers(make_services: MakeServices) -> None:
    services = make_services()
    _open_accounts(services.ledger, services.catalogue, 60)
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
    _open_accounts(services.ledger, services.catalogue, 1)
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
    finally:
        fresh.close()
        replaying.close()
