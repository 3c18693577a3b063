"""Usage records read over several polls are applied together, in one event per account
and month; what is gathered and not applied is never acknowledged, so a consumer that
stops with records gathered loses none of them. Real PostgreSQL and broker.
"""

from __future__ import annotations

import psycopg
from kafka import TopicPartition
from psycopg import sql

from consumers.runner import LedgerConsumer
from ledger.entrypoints.bootstrap import Services
from ledger.periods import Month
from tests.conftest import MakeServices
from tests.support import Upstreams, poll_until, utc

#: Longer than any test here runs: records are applied only when the test says so.
FOREVER = 600.0


def _emails_recorded(services: Services) -> int:
    events = sql.Identifier(services.settings.database_schema, "ledger_events")
    with psycopg.connect(str(services.settings.database_url)) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE topic LIKE %s").format(events),
            ("%EmailsRecorded",),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _gather(consumer: LedgerConsumer, records: int) -> None:
    poll_until(consumer, lambda: len(consumer.gathering) == records, f"{records} records gathered")


def test_records_of_several_polls_are_applied_together(make_services: MakeServices) -> None:
    services = make_services(topic_partitions=1)
    emails_tp = TopicPartition(services.settings.topic_email_sent, 0)
    up = Upstreams(services)
    up.publish([up.opened("acme", utc(2026, 11, 1))])
    consumer = services.consumer(gather_seconds=FOREVER)
    try:
        up.publish(up.emails("acme", 3, utc(2026, 11, 2, 9)))
        _gather(consumer, 3)
        up.publish(up.emails("acme", 4, utc(2026, 11, 2, 10)))
        _gather(consumer, 7)
        # Read, not applied: the account is open, nothing of its usage is stored.
        assert consumer.stored_position(emails_tp) is None
        assert _emails_recorded(services) == 0
        consumer.gathering.seconds = 0  # the oldest has now waited long enough
        poll_until(consumer, lambda: consumer.stored_position(emails_tp) == 6, "emails applied")
    finally:
        consumer.close()
        up.close()
    # Seven emails from two publishes and several polls: one event.
    assert _emails_recorded(services) == 1
    assert services.ledger.get_account("acme").volume(Month(2026, 11)) == 7


def test_records_gathered_when_the_consumer_stops_are_read_again(
    make_services: MakeServices,
) -> None:
    services = make_services(topic_partitions=1)
    emails_tp = TopicPartition(services.settings.topic_email_sent, 0)
    up = Upstreams(services)
    up.publish([up.opened("acme", utc(2026, 11, 1))])
    up.publish(up.emails("acme", 5, utc(2026, 11, 2, 9)))
    up.close()
    first = services.consumer(gather_seconds=FOREVER)
    try:
        _gather(first, 5)
    finally:
        first.close()  # stopped with five records read and none applied
    assert _emails_recorded(services) == 0

    second = services.consumer()
    try:
        poll_until(second, lambda: second.stored_position(emails_tp) == 4, "emails applied")
    finally:
        second.close()
    assert _emails_recorded(services) == 1
    assert services.ledger.get_account("acme").volume(Month(2026, 11)) == 5
