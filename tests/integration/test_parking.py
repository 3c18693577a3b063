"""Parking facts whose account is not open yet, and re-driving them: exactly once.

Real PostgreSQL and broker. The collision is injected as in
``test_consumer_pipeline.py``: from another connection, a stored event takes
the aggregate version the re-drive's save will need, and is removed when the
consumer reports the collision, so the retry succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from eventsourcing.persistence import Tracking
from prometheus_client import REGISTRY
from psycopg import sql

from commands.handlers import BatchWork, apply_commands, save_batch
from commands.models import OpenAccount, Origin, RecordEmailsSent, SentEmailItem
from commands.parked import ParkedRow, ParkedRowsGone, Redriven
from commands.store import LedgerRecorder
from consumers.batch import BatchOutcome
from ledger.emails.account import Account
from ledger.entrypoints.bootstrap import Services
from ledger.opening import account_uuid
from ledger.periods import Month
from tests.conftest import MakeServices
from tests.support import Upstreams, poll_until, read_topic, utc


def _recorder(services: Services) -> LedgerRecorder:
    recorder = services.ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    return recorder


def _dedupe_keys(services: Services) -> int:
    table = sql.Identifier(services.settings.database_schema, "ledger_dedupe")
    with psycopg.connect(str(services.settings.database_url)) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    return int(row[0]) if row else 0


def _email_account(services: Services, account_id: str) -> Account:
    services.ledger.evict([account_uuid(account_id)])
    account = services.ledger.get_account(account_id)
    assert isinstance(account, Account)
    return account


def test_a_fact_whose_account_does_not_open_within_the_bound_is_dead_lettered_with_the_reason(
    make_services: MakeServices,
) -> None:
    services = make_services(topic_partitions=1)
    sent = utc(2026, 11, 20, 12)
    now = [sent + timedelta(hours=1)]  # both emails are in the past, none in the future
    services.clock = lambda: now[0]  # injected: the bound is measured against it
    up = Upstreams(services)
    up.publish([up.email("ghost", sent), up.email("ghost", sent + timedelta(hours=1))])
    recorder = _recorder(services)
    consumer = services.consumer()
    try:
        poll_until(consumer, lambda: recorder.parked_count() == 2, "two emails parked")
        assert recorder.dead_letter_count() == 0

        now[0] = sent + timedelta(days=7)  # exactly the bound: not older than it yet
        consumer.parking.sweep()
        assert recorder.parked_count() == 2
        assert REGISTRY.get_sample_value("ledger_parked") == 2

        now[0] = sent + timedelta(days=7, minutes=30)  # the first is older, the second not
        consumer.parking.sweep()
        assert recorder.parked_count() == 1
        assert REGISTRY.get_sample_value("ledger_parked") == 1
        letters = recorder.dead_letters()
        assert [row["reason"] for row in letters] == [
            "account 'ghost' not opened within P7D of the event"
        ]
        assert (letters[0]["topic"], letters[0]["kafka_offset"]) == (
            services.settings.topic_email_sent,
            0,
        )
        dead = read_topic(services, services.settings.topic_dead_letter, expected=1)
        assert [(d["reason"], d["offset"]) for d in dead] == [
            ("account 'ghost' not opened within P7D of the event", 0)
        ]

        # The account opens: the email that waited within the bound is billed, once.
        up.publish([up.opened("ghost", utc(2026, 11, 1))])
        poll_until(consumer, lambda: recorder.parked_count() == 0, "the parked email re-driven")
    finally:
        consumer.close()
        up.close()
    ghost = _email_account(services, "ghost")
    assert ghost.months["2026-11"].platform == 1
    assert recorder.dead_letter_count() == 1
    assert _dedupe_keys(services) == 2  # the opening and the email


def _take_next_version(services: Services, account: str) -> Callable[[], int]:
    """Store a copy of the account's latest event at the next version; returns its undo."""
    aggregate_id = account_uuid(account)
    events = sql.Identifier(services.settings.database_schema, "ledger_events")
    with psycopg.connect(str(services.settings.database_url), autocommit=True) as conn:
        row = conn.execute(
            sql.SQL("SELECT max(originator_version) FROM {} WHERE originator_id = %s").format(
                events
            ),
            (aggregate_id,),
        ).fetchone()
        assert row is not None and row[0] is not None
        taken = int(row[0]) + 1
        conn.execute(
            sql.SQL(
                "INSERT INTO {0} (originator_id, originator_version, topic, state) "
                "SELECT originator_id, %s, topic, state FROM {0} "
                "WHERE originator_id = %s AND originator_version = %s"
            ).format(events),
            (taken, aggregate_id, taken - 1),
        )

    def undo() -> int:
        with psycopg.connect(str(services.settings.database_url), autocommit=True) as conn:
            return conn.execute(
                sql.SQL(
                    "DELETE FROM {} WHERE originator_id = %s AND originator_version = %s"
                ).format(events),
                (aggregate_id, taken),
            ).rowcount

    return undo


def test_a_redrive_that_collides_stores_nothing_and_its_retry_bills_each_fact_once(
    make_services: MakeServices,
) -> None:
    services = make_services(topic_partitions=1)
    services.clock = lambda: utc(2026, 11, 3)  # well within the bound of the emails' time
    settings = services.settings
    up = Upstreams(services)
    up.publish(up.emails("late", 5, utc(2026, 11, 2, 9)))
    recorder = _recorder(services)
    outcomes: list[BatchOutcome] = []
    undo: list[Callable[[], int]] = []

    def on_batch(outcome: BatchOutcome) -> None:
        outcomes.append(outcome)
        if outcome.topic == settings.topic_accounts and not outcome.redo:
            # The opening is stored; the sweep that follows it has not re-driven yet.
            undo.append(_take_next_version(services, "late"))
        elif outcome.redriven and outcome.redo:
            assert recorder.parked_count() == 5  # the failed re-drive settled nothing
            assert undo and undo[0]() == 1  # the conflict goes away: the retry succeeds

    consumer = services.consumer(on_batch=on_batch)
    try:
        poll_until(consumer, lambda: recorder.parked_count() == 5, "five emails parked")
        up.publish([up.opened("late", utc(2026, 11, 1))])
        poll_until(consumer, lambda: recorder.parked_count() == 0, "the emails re-driven")
        cached = consumer.ledger.get_account("late")  # the consumer's own cache
    finally:
        consumer.close()
        up.close()

    redriven = [o for o in outcomes if o.redriven]
    assert [(o.redo, o.records, o.applied) for o in redriven] == [(True, 5, 0), (False, 5, 5)]
    assert _dedupe_keys(services) == 1 + 5
    replayed = _email_account(services, "late")
    assert replayed.volume(Month(2026, 11)) == 5
    assert (cached.version, cached.volume(Month(2026, 11))) == (replayed.version, 5)  # type: ignore[union-attr]
    history = [type(e).__name__ for e in services.ledger.history("late")]
    assert history.count("EmailsRecorded") == 1  # one event for the five, as in a batch


def test_parked_facts_of_an_account_are_applied_in_the_order_they_arrived(
    make_services: MakeServices,
) -> None:
    """A credit, the closing, another credit, all before the opening (one partition):
    re-driven in that order, the second credit finds the account closed."""
    services = make_services(topic_partitions=1)
    services.clock = lambda: utc(2026, 11, 5)  # well within the bound of the facts' times
    up = Upstreams(services)
    up.publish(
        [
            up.credit("shop", "5.00", utc(2026, 11, 2)),
            up.panel.event(
                services.settings.topic_accounts,
                "account.closed",
                utc(2026, 11, 3),
                {"account_id": "shop"},
            ),
            up.credit("shop", "7.00", utc(2026, 11, 4)),
        ]
    )
    recorder = _recorder(services)
    consumer = services.consumer()
    try:
        poll_until(consumer, lambda: recorder.parked_count() == 3, "three facts parked")
        up.publish([up.opened("shop", utc(2026, 11, 1), payment_mode="prepaid")])
        poll_until(consumer, lambda: recorder.parked_count() == 0, "the facts re-driven")
    finally:
        consumer.close()
        up.close()
    shop = _email_account(services, "shop")
    # Fee 10.00 debited at the opening, 5.00 credited, then closed.
    assert (shop.balance.amount, shop.closed_at) == (Decimal("-5.00"), utc(2026, 11, 3))
    assert [row["reason"] for row in recorder.dead_letters()] == ["account 'shop' is closed"]
    assert [(row["kafka_offset"]) for row in recorder.dead_letters()] == [2]


def _opened(services: Services, account: str) -> None:
    work = BatchWork(services.ledger, services.catalogue)
    command = OpenAccount(
        account_id=account,
        plan="email-starter",
        payment_mode="postpaid",
        currency="EUR",
        at=utc(2026, 11, 1),
    )
    apply_commands([command], work)
    save_batch(work, Tracking("kafka:accounts:0", 0))


def _emails_work(services: Services, ids: list[str], at: datetime) -> BatchWork:
    items = tuple(
        SentEmailItem(at, "platform", Origin("urn:mta", i, "emails", 0, n, f"<{i}>"))
        for n, i in enumerate(ids)
    )
    work = BatchWork(services.ledger, services.catalogue)
    apply_commands([RecordEmailsSent(account_id="acme", emails=items)], work)
    return work


def test_a_redrive_whose_parked_rows_were_settled_by_another_writer_stores_nothing(
    make_services: MakeServices,
) -> None:
    """The guard that makes a re-drive exactly once: its DELETE must find every row."""
    services = make_services()
    recorder = _recorder(services)
    _opened(services, "acme")
    fact = ParkedRow("acme", "emails", 0, 0, b"acme", b"{}", utc(2026, 11, 2), "parked")
    save_batch(
        BatchWork(services.ledger, services.catalogue), Tracking("kafka:emails:0", 0), parked=[fact]
    )
    [row] = recorder.parked_ready([("emails", 0)], 10)
    before = _email_account(services, "acme").version

    with pytest.raises(ParkedRowsGone):  # one of the two rows is not there (any more)
        save_batch(
            _emails_work(services, ["e1"], utc(2026, 11, 2)),
            None,
            redriven=Redriven([row.id, row.id + 1]),
        )
    assert _email_account(services, "acme").version == before
    assert recorder.known_keys([("urn:mta", "e1")]) == set()
    assert recorder.parked_count() == 1

    save_batch(_emails_work(services, ["e1"], utc(2026, 11, 2)), None, redriven=Redriven([row.id]))
    assert recorder.parked_count() == 0
    assert recorder.known_keys([("urn:mta", "e1")]) == {("urn:mta", "e1")}
    assert _email_account(services, "acme").version == before + 1
