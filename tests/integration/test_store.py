"""The batch transaction: events, Kafka position and dedupe keys commit together or not at all."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, Tracking
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresProcessRecorder
from psycopg.sql import SQL

from commands.batch_rows import DeadLetterRow
from commands.handlers import BatchWork, apply_commands, save_batch
from commands.models import OpenAccount, Origin, RecordEmailsSent, SentEmailItem
from commands.store import LedgerRecorder
from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.support import utc


def _opening(services: Services) -> BatchWork:
    work = BatchWork(services.ledger, services.catalogue)
    apply_commands(
        [
            OpenAccount(
                account_id="acme",
                plan="email-starter",
                payment_mode="postpaid",
                currency="EUR",
                at=utc(2026, 11, 1),
            )
        ],
        work,
    )
    return work


def _open(services: Services) -> None:
    save_batch(_opening(services), Tracking("kafka:accounts:0", 0))


def _emails(services: Services, ids: list[str], offset: int) -> BatchWork:
    items = tuple(
        SentEmailItem(
            utc(2026, 11, 2), "platform", Origin("urn:mta", i, "emails", 0, offset, f"<{i}>")
        )
        for i in ids
    )
    work = BatchWork(services.ledger, services.catalogue)
    apply_commands([RecordEmailsSent(account_id="acme", emails=items)], work)
    return work


def test_a_redelivered_offset_is_refused_and_changes_nothing(make_services: MakeServices) -> None:
    services = make_services()
    _open(services)
    save_batch(_emails(services, ["e1", "e2"], 0), Tracking("kafka:emails:0", 0))
    services.ledger.evict([services.ledger.get_account("acme").id])
    before = services.ledger.get_account("acme")

    with pytest.raises(IntegrityError):
        save_batch(_emails(services, ["e3"], 0), Tracking("kafka:emails:0", 0))

    services.ledger.evict([before.id])
    after = services.ledger.get_account("acme")
    assert (after.version, after.months["2026-11"].platform) == (before.version, 2)
    assert services.ledger.process_recorder.known_keys([("urn:mta", "e3")]) == set()  # type: ignore[attr-defined]


def test_a_batch_records_its_dedupe_keys_pointing_at_the_event_that_billed_them(
    make_services: MakeServices,
) -> None:
    services = make_services()
    recorder = services.ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    _open(services)
    save_batch(_emails(services, ["e1", "e2"], 0), Tracking("kafka:emails:0", 0))
    assert recorder.known_keys([("urn:mta", "e1"), ("urn:mta", "e2"), ("urn:mta", "zz")]) == {
        ("urn:mta", "e1"),
        ("urn:mta", "e2"),
    }
    traced = recorder.trace_message("acme", "<e1>")
    account = services.ledger.get_account("acme")
    assert [(r["originator_id"], r["originator_version"]) for r in traced] == [
        (account.id, account.version)
    ]


def test_the_library_insert_calls_the_hook_in_its_transaction(
    make_services: MakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards the one private eventsourcing hook we override (pinned to 9.5.x).

    Our fork of ``insert_events`` calls the hook itself, so these batches are
    saved through the library's own insert: if eventsourcing stops calling
    ``_insert_events``, or calls it outside the insert's transaction, this
    fails (tests/unit/test_library_touches.py guards the fork's source). Only
    side rows the hook writes with INSERT: the library's insert runs in
    psycopg's pipeline mode, which refuses COPY (the dedupe keys').
    """
    services = make_services()
    recorder = services.ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    monkeypatch.setattr(LedgerRecorder, "insert_events", PostgresProcessRecorder.insert_events)
    first, second = _opening(services), _opening(services)  # both decided before either is saved
    letter = DeadLetterRow("accounts", 0, 1, "bad input", None, b"{}")

    save_batch(first, Tracking("kafka:accounts:0", 0))
    assert recorder.account_ids() == ["acme"]
    assert recorder.max_tracking_id("kafka:accounts:0") == 0

    # The second opening collides on its event (acme's version 1), after the hook ran.
    second.opened.clear()
    head = recorder.max_notification_id()
    with pytest.raises(IntegrityError):
        save_batch(second, Tracking("kafka:accounts:0", 1), [letter])
    assert recorder.max_notification_id() == head
    assert recorder.max_tracking_id("kafka:accounts:0") == 0
    assert recorder.dead_letter_count() == 0

    monkeypatch.undo()  # the fork writes the same rows
    save_batch(
        BatchWork(services.ledger, services.catalogue), Tracking("kafka:accounts:0", 1), [letter]
    )
    assert (recorder.max_tracking_id("kafka:accounts:0"), recorder.dead_letter_count()) == (1, 1)


def test_the_events_insert_is_the_library_statement_with_its_array_sent_in_binary(
    make_services: MakeServices,
) -> None:
    recorder = make_services().ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    library = PostgresApplicationRecorder(
        recorder.datastore, events_table_name=recorder.events_table_name
    ).insert_events_statement
    ours = recorder.insert_events_statement
    assert ours.as_string() == library.as_string().replace("%s::", "%b::")


def _cancel_once_waiting_then_unlock(
    database_url: str, table: str, locked: threading.Event
) -> None:
    """Hold ``table`` locked; when a writer waits for it, cancel that writer, then unlock."""
    with psycopg.connect(database_url) as conn:
        conn.execute(SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(SQL(table)))
        locked.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT pid FROM pg_locks WHERE NOT granted AND relation = %s::regclass", (table,)
            ).fetchall()
            if waiting:
                conn.execute("SELECT pg_cancel_backend(%s)", (waiting[0][0],))
                break
            time.sleep(0.01)  # polls a condition, bounded by the deadline
    # Leaving the block commits: the table is free again for any retry.


def test_a_save_that_fails_is_not_retried_inside_the_insert(make_services: MakeServices) -> None:
    """The library retries its insert; the fork does not (docs/library-touches.md): the
    caller redoes the batch from the store. Here the save's table lock wait is
    cancelled and the lock released at once: a retry would succeed, so the save
    returning instead of raising would mean the insert retried."""
    services = make_services()
    recorder = services.ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    _open(services)
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    locked = threading.Event()
    holder = threading.Thread(
        target=_cancel_once_waiting_then_unlock, args=(services.database_url, table, locked)
    )
    holder.start()
    locked.wait(30)
    try:
        with pytest.raises(OperationalError, match="canceling statement"):
            save_batch(_emails(services, ["e1"], 0), Tracking("kafka:emails:0", 0))
    finally:
        holder.join(30)
    assert recorder.max_tracking_id("kafka:emails:0") is None
    assert recorder.known_keys([("urn:mta", "e1")]) == set()

    services.ledger.evict([services.ledger.get_account("acme").id])  # as the consumer's redo
    save_batch(_emails(services, ["e1"], 0), Tracking("kafka:emails:0", 0))
    assert recorder.known_keys([("urn:mta", "e1")]) == {("urn:mta", "e1")}
    assert services.ledger.get_account("acme").months["2026-11"].platform == 1


def test_a_dedupe_key_already_taken_aborts_the_whole_batch(make_services: MakeServices) -> None:
    services = make_services()
    _open(services)
    save_batch(_emails(services, ["e1"], 0), Tracking("kafka:emails:0", 0))
    head = services.ledger.recorder.max_notification_id()

    # Another writer applied e1 meanwhile; this batch also carries e2 at a new offset.
    with pytest.raises(IntegrityError):
        save_batch(_emails(services, ["e1", "e2"], 1), Tracking("kafka:emails:0", 1))

    assert services.ledger.recorder.max_notification_id() == head
    assert services.ledger.process_recorder.max_tracking_id("kafka:emails:0") == 0
    assert services.ledger.process_recorder.known_keys([("urn:mta", "e2")]) == set()  # type: ignore[attr-defined]


def test_database_functions_stay_off(make_services: MakeServices) -> None:
    """With them on, a process recorder silently drops Tracking (DESIGN.md)."""
    services = make_services()
    assert services.ledger.process_recorder.datastore.enable_db_functions is False  # type: ignore[attr-defined]
