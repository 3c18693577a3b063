"""The hash chain under concurrent writers: two ledgers saving at once, and walks
taken while they write (in pages of three events), all find the chain intact."""

from __future__ import annotations

import threading

import pytest

from commands import chain_store
from commands.handlers import BatchWork, apply_commands, save_batch
from commands.models import OpenAccount, Origin, RecordEmailsSent, SentEmailItem
from commands.store import LedgerRecorder
from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.support import utc


def _save(services: Services, commands: list) -> None:  # type: ignore[type-arg]
    work = BatchWork(services.ledger, services.catalogue)
    apply_commands(commands, work)
    assert not work.rejections
    save_batch(work, None)


def _emails(account: str, batch: int) -> RecordEmailsSent:
    items = tuple(
        SentEmailItem(
            utc(2026, 11, 2, batch % 24),
            "platform",
            Origin("urn:mta", f"{account}-{batch}-{n}", message_id=f"<{account}-{batch}-{n}>"),
        )
        for n in range(3)
    )
    return RecordEmailsSent(account_id=account, emails=items)


def test_two_writers_and_walks_meanwhile_keep_the_chain_intact(
    make_services: MakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chain_store, "PAGE", 3)  # every walk and catch-up crosses pages
    first, second = make_services(), make_services()
    accounts = [f"acct-{i}" for i in range(8)]
    _save(
        first,
        [
            OpenAccount(
                account_id=a,
                plan="email-starter",
                payment_mode="postpaid",
                currency="EUR",
                at=utc(2026, 11, 1),
            )
            for a in accounts
        ],
    )
    recorder = first.ledger.recorder
    assert isinstance(recorder, LedgerRecorder)
    walks: list[object] = []
    errors: list[BaseException] = []

    def write(services: Services, mine: list[str]) -> None:
        try:
            for batch in range(15):
                _save(services, [_emails(a, batch) for a in mine])
        except BaseException as exc:
            errors.append(exc)

    writers = [
        threading.Thread(target=write, args=(first, accounts[:4])),
        threading.Thread(target=write, args=(second, accounts[4:])),
    ]
    for writer in writers:
        writer.start()
    while any(w.is_alive() for w in writers):
        walks.append(recorder.walk_chain())
    for writer in writers:
        writer.join()
    assert errors == []
    assert all(w.broken is None for w in walks), [w.broken for w in walks if w.broken]  # type: ignore[attr-defined]
    final = recorder.walk_chain()
    stored = recorder.max_notification_id()
    assert final.broken is None
    with recorder.datastore.transaction(commit=False) as curs:
        curs.execute(f'SELECT count(*) AS n FROM "{recorder.datastore.schema}".ledger_events')
        row = curs.fetchone()
    assert row is not None
    # At least the 8 openings and one event per account and batch (2 x 15 x 4).
    assert final.checked == row["n"] >= 8 + 2 * 15 * 4
    assert final.head is not None and final.head.position == stored
