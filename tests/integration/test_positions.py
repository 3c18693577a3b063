"""Stored positions against the broker's log: never skip a record in silence.

A position beyond the end of its log (the topic was recreated, the broker
lost its memory) or before its start (records deleted unread) holds the
partition: nothing of it is read, an error and a metric say so, the lag
counts the whole log, and ``ledger positions reset`` (recorded in the
history) releases it.
"""

from __future__ import annotations

import time

from eventsourcing.persistence import Tracking
from kafka import KafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2
from prometheus_client import REGISTRY

from consumers.log_probe import LogProbe
from consumers.positions import load_partition_log
from consumers.topics import ensure_topics
from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, ledger_command, ledger_env, poll_until, utc


def _gauge(name: str, tp: TopicPartition) -> float | None:
    return REGISTRY.get_sample_value(name, {"topic": tp.topic, "partition": str(tp.partition)})


def _emails_partition(services: Services, account: str) -> TopicPartition:
    probe = LogProbe(services.kafka_config)
    try:
        partitions = probe.partitions(services.settings.topic_email_sent)
    finally:
        probe.close()
    index = (murmur2(account.encode()) & 0x7FFFFFFF) % len(partitions)
    return partitions[index]


def _platform_emails(services: Services, account: str) -> int:
    catch_up(services)
    rows = services.reports().usage(account, "2026-11")
    return int(rows[0]["platform_emails"]) if rows else 0


def test_the_true_end_of_a_log_is_found_when_the_broker_reports_less(
    make_services: MakeServices,
) -> None:
    """Tansu reports a log's end as its last batch's first offset + 1: 3,000 records
    then 600 sent as one batch read as "end = 3001". The probe reads the last
    batch to its end instead (more records than one poll returns by default)."""
    services = make_services()
    topic = f"{services.settings.topic_email_sent}.probe"
    ensure_topics(services.kafka_config, [topic], 1)
    producer = KafkaProducer(**services.kafka_config, linger_ms=500, batch_size=4_000_000)
    for count in (3000, 600):
        for i in range(count):
            producer.send(topic, b"x" * 100 + b"%d" % i, partition=0)
        producer.flush()
    producer.close()
    tp = TopicPartition(topic, 0)
    probe = LogProbe(services.kafka_config)
    try:
        assert probe.bounds([tp], {tp: 3600}) == {tp: (0, 3600)}
        assert probe.bounds([tp], {tp: 3601}) == {tp: (0, 3600)}
        assert probe.bounds([tp], {tp: 7})[tp][1] >= 3001  # not in doubt: not probed
    finally:
        probe.close()


def test_a_position_beyond_the_end_of_its_log_holds_the_partition_until_reset(
    make_services: MakeServices,
) -> None:
    services = make_services()
    up = Upstreams(services)
    up.publish([up.opened("acme", utc(2026, 11, 1)), *up.emails("acme", 10, utc(2026, 11, 2))])
    consumer = services.consumer()
    consumer.drain(timeout=60)
    consumer.close()
    assert _platform_emails(services, "acme") == 10
    tp = _emails_partition(services, "acme")
    partition_log = load_partition_log(services.ledger, tp.topic, tp.partition)
    assert partition_log is not None
    # As after a topic was recreated: the stored position was taken in a longer log.
    services.ledger.process_recorder.insert_events(
        [], tracking=Tracking(partition_log.tracking_name, 500)
    )
    up.publish(up.emails("acme", 4, utc(2026, 11, 3)))  # offsets 10..13

    consumer = services.consumer()
    try:
        poll_until(consumer, lambda: tp in consumer.held_partitions, "the partition to be held")
        held = consumer.held_partitions[tp]
        assert (held.status, held.stored, held.log_start, held.log_end) == (
            "beyond_end",
            500,
            0,
            14,
        )
        assert _gauge("ledger_partition_held", tp) == 1
        assert _gauge("ledger_consumer_lag", tp) == 14  # the whole log: none of it is known read
        for _ in range(10):
            consumer.poll_once()
        assert _platform_emails(services, "acme") == 10  # nothing read, nothing guessed
        # The log grows past the foreign position: still held (reading from 501 would
        # skip offsets 14..500 in silence), until an operator says otherwise.
        up.publish(up.emails("acme", 500, utc(2026, 11, 4)))  # offsets 14..513
        grown = time.monotonic()
        poll_until(
            consumer,
            lambda: consumer.positions_checked_at > grown,
            "a position check after the log grew",
        )
        assert consumer.held_partitions[tp].log_end == 514
        assert _platform_emails(services, "acme") == 10

        env = ledger_env(services.settings)
        shown = ledger_command("positions", "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        assert "HELD: beyond_end" in shown.stdout
        refused = ledger_command(
            "positions",
            "reset",
            tp.topic,
            str(tp.partition),
            "--to",
            "999",
            "--reason",
            "topic recreated",
            env=env,
        )
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == [
            f"error: offset 999 is outside the log of {tp.topic}:{tp.partition} (0..514)"
        ]
        reset = ledger_command(
            "positions",
            "reset",
            tp.topic,
            str(tp.partition),
            "--to",
            "10",
            "--reason",
            "topic recreated, 0..9 were billed before",
            env=env,
        )
        assert reset.returncode == 0, reset.stderr
        deadline = time.monotonic() + 30
        while _platform_emails(services, "acme") != 514:
            consumer.poll_once()
            assert time.monotonic() < deadline, "the reset partition was not read"
        assert tp not in consumer.held_partitions
        assert _gauge("ledger_partition_held", tp) == 0
    finally:
        consumer.close()
        up.close()
    again = ledger_command(
        "positions", "reset", tp.topic, str(tp.partition), "--to", "0", "--reason", "x", env=env
    )
    assert again.returncode == 1
    assert again.stderr.startswith(f"error: {tp.topic}:{tp.partition} is not held")
    history = [
        type(e).__name__
        for e in services.ledger.events.get(partition_log.id)  # the auditors' record
    ]
    assert history == ["Adopted", "Held", "Reset"]
    stored = load_partition_log(services.ledger, tp.topic, tp.partition)
    assert stored is not None and (stored.epoch, stored.start_offset) == (1, 10)
