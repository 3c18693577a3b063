"""The consumer pipelines a batch's save with the next batch's decoding; a failed
save discards what was prepared behind it, and everything is redone exactly once.

Real PostgreSQL and broker. The failure is injected from another connection: a
stored event taking the aggregate version that an email batch's save will
need, so that save collides (``IntegrityError``) after the next batch was
already polled, decoded and mapped. The injected event is removed when the
consumer reports the collision, so the redo succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
import pytest
from kafka import TopicPartition
from psycopg import sql

from consumers.batch import BatchOutcome
from ledger.entrypoints.bootstrap import Services
from ledger.opening import account_uuid
from ledger.periods import Month
from tests.conftest import MakeServices
from tests.support import Upstreams, utc

EMAILS = 20
BATCH = 5  # records per poll: four email batches, the rest buffered by the client


def _execute(services: Services, statement: sql.Composable, *params: object) -> int:
    with psycopg.connect(str(services.settings.database_url), autocommit=True) as conn:
        return conn.execute(statement, params).rowcount


def _events(services: Services) -> sql.Composable:
    return sql.Identifier(services.settings.database_schema, "ledger_events")


def _take_version_of_the_second_email_batch(services: Services, account: str) -> Callable[[], int]:
    """Store an event at the version the second email batch will produce; returns its undo."""
    aggregate_id = account_uuid(account)
    events = _events(services)
    with psycopg.connect(str(services.settings.database_url), autocommit=True) as conn:
        row = conn.execute(
            sql.SQL("SELECT max(originator_version) FROM {} WHERE originator_id = %s").format(
                events
            ),
            (aggregate_id,),
        ).fetchone()
        assert row is not None and row[0] is not None
        taken = int(row[0]) + 2  # the first email batch records +1, the second +2
        # A copy of the latest event at that version: never read, deleted before the redo.
        conn.execute(
            sql.SQL(
                "INSERT INTO {0} (originator_id, originator_version, topic, state) "
                "SELECT originator_id, %s, topic, state FROM {0} "
                "WHERE originator_id = %s AND originator_version = %s"
            ).format(events),
            (taken, aggregate_id, taken - 2),
        )

    def undo() -> int:
        return _execute(
            services,
            sql.SQL("DELETE FROM {} WHERE originator_id = %s AND originator_version = %s").format(
                events
            ),
            aggregate_id,
            taken,
        )

    return undo


def test_a_failed_save_discards_the_batch_prepared_behind_it_and_all_is_redone_once(
    make_services: MakeServices,
) -> None:
    services = make_services(topic_partitions=1, batch_max_records=BATCH)
    settings = services.settings
    up = Upstreams(services)
    up.publish([up.opened("acme", utc(2026, 11, 1))])
    up.publish(up.emails("acme", EMAILS, utc(2026, 11, 2, 9)))
    up.close()

    outcomes: list[BatchOutcome] = []
    undo: list[Callable[[], int]] = []

    def on_batch(outcome: BatchOutcome) -> None:
        outcomes.append(outcome)
        if outcome.topic == settings.topic_accounts and not outcome.redo:
            # The account is stored, no email batch is applied yet (usage waits
            # for the accounts topic, and a batch is applied only once the save
            # before it has settled).
            undo.append(_take_version_of_the_second_email_batch(services, "acme"))
        elif outcome.redo and not outcome.discarded:
            assert undo and undo[0]() == 1  # the conflict goes away: the redo succeeds

    consumer = services.consumer(on_batch=on_batch)
    emails_tp = TopicPartition(settings.topic_email_sent, 0)
    try:
        # Not ``drain()``: the embedded broker reports the end of a partition as the
        # base offset of its last record batch + 1 (here 1: the emails were published
        # as one batch), so ``caught_up`` would be true too early. The stored position
        # is what counts.
        deadline = time.monotonic() + 60
        while consumer.in_flight or consumer.stored_position(emails_tp) != EMAILS - 1:
            consumer.poll_once()
            assert time.monotonic() < deadline, outcomes
        cached = consumer.ledger.get_account("acme")  # the consumer's own cache
    finally:
        consumer.close()

    emails = [o for o in outcomes if o.topic == settings.topic_email_sent]
    collided = [o for o in emails if o.redo and not o.discarded]
    discarded = [o for o in emails if o.discarded]
    # The second email batch collided while the third was already prepared behind
    # it: the third was discarded (never applied) and both were redone.
    assert len(collided) == 1 and len(discarded) == 1, emails
    assert emails.index(discarded[0]) == emails.index(collided[0]) + 1
    assert discarded[0].first_offset == collided[0].last_offset + 1
    assert collided[0].applied == discarded[0].applied == 0

    # Every email was committed by exactly one batch, in order.
    committed = [o for o in emails if not o.redo]
    offsets = [n for o in committed for n in range(o.first_offset, o.last_offset + 1)]
    assert offsets == list(range(EMAILS)), emails
    assert sum(o.applied for o in committed) == EMAILS
    assert sum(o.dead_letters + o.duplicates for o in committed) == 0

    # Stored exactly once: one dedupe key per message, one event per committed batch.
    dedupe = sql.Identifier(settings.database_schema, "ledger_dedupe")
    with psycopg.connect(str(settings.database_url)) as conn:
        keys = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(dedupe)).fetchone()
    assert keys == (1 + EMAILS,)
    services.ledger.evict([account_uuid("acme")])
    replayed = services.ledger.get_account("acme")
    november = Month(2026, 11)
    assert replayed.volume(november) == EMAILS
    # The consumer's cached aggregate never saw the discarded batch twice.
    assert (cached.version, cached.volume(november)) == (replayed.version, EMAILS)
    history = [type(e).__name__ for e in services.ledger.history("acme")]
    assert history.count("EmailsRecorded") == len(committed)


def test_a_command_that_fails_unexpectedly_is_dead_lettered_and_the_rest_billed(
    make_services: MakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection (not a mock of Kafka or PostgreSQL): the handler of one account's
    emails raises a RuntimeError after it has already changed the aggregate, as a bug
    would. Its emails are dead-lettered with the error; the other account is billed;
    the consumer keeps going and the failing account's stored state is untouched."""
    from commands import handlers
    from commands.models import RecordEmailsSent
    from commands.store import LedgerRecorder

    real = handlers.HANDLERS[RecordEmailsSent]

    def buggy(cmd: RecordEmailsSent, work: handlers.BatchWork) -> None:
        real(cmd, work)  # the aggregate is changed, then the handler blows up
        if cmd.account_id == "poison":
            raise RuntimeError("boom")

    monkeypatch.setitem(handlers.HANDLERS, RecordEmailsSent, buggy)
    services = make_services(topic_partitions=1)
    up = Upstreams(services)
    up.publish([up.opened("good", utc(2026, 11, 1)), up.opened("poison", utc(2026, 11, 1))])
    up.publish([*up.emails("good", 5, utc(2026, 11, 2)), *up.emails("poison", 3, utc(2026, 11, 2))])
    consumer = services.consumer()
    try:
        consumer.drain(timeout=60)
    finally:
        consumer.close()
    recorder = services.ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    reasons = [row["reason"] for row in recorder.dead_letters()]
    assert reasons == ["internal error: RuntimeError: boom"] * 3
    assert services.ledger.get_account("good").months["2026-11"].platform == 5  # type: ignore[union-attr]
    poisoned = services.ledger.get_account("poison")
    assert "2026-11" not in poisoned.months or poisoned.months["2026-11"].platform == 0  # type: ignore[union-attr]
    up.close()
