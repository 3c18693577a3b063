"""Fuzzed input through the real broker to the real consumer.

Seeded mutations of valid CloudEvents (``LEDGER_CHAOS_SEED``, default below)
are interleaved with good messages and published to the real broker; the real
consumer, its clock injected, drains them. Then, exactly:

- every bad message is a dead letter: the ``ledger_dead_letters`` rows are the
  bad messages' (topic, partition, offset), one each, each with the reason its
  mutation calls for;
- every good one is billed: usage and balances equal what the test works out
  by hand from the good messages it generated (plan ``email-starter``:
  fee 10.00, 1,000 emails included, positions 1,001-10,000 at 0.0010,
  10,001-100,000 at 0.0008);
- no partition stalled: every stored position reached its partition's end.

``make test`` runs a short version; ``make chaos`` the full one (marker ``chaos``).
"""

from __future__ import annotations

import os
import random
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from kafka import KafkaProducer
from psycopg.sql import SQL, Identifier

from commands.store import LedgerRecorder
from consumers.upstream_publisher import producer
from tests.chaos.fuzz_messages import CLOCK, Fuzz, Message
from tests.conftest import MakeServices
from tests.support import catch_up, positions_at_end

SEED = int(os.environ.get("LEDGER_CHAOS_SEED", "20261201"))

#: A piece of the reason of each mutation's dead letter; the others start "invalid ..." or "not JSON".
REASONS = {
    "invalid_utf8": "not UTF-8",
    "future_time": "is in the future",
    "wrong_topic": "does not belong on topic",
    "wrong_key": "Kafka key",
    "sub_cent": "decimal places of EUR",
    "empty": "empty message",
    "nul": "NUL characters",
    "not_object": "not a CloudEvent",
    "unknown_type": "unknown event type",
    "unknown_plan": "unknown plan",
    "wrong_account_kind": "billed by",
}


def starter_usage(platform: int) -> Decimal:
    """email-starter, graduated: positions 1,001-10,000 at 0.0010, 10,001-100,000 at 0.0008."""
    return Decimal("0.0010") * max(0, min(platform, 10_000) - 1_000) + Decimal("0.0008") * max(
        0, min(platform, 100_000) - 10_000
    )


def publish(kafka: KafkaProducer, messages: list[Message]) -> list[tuple[str, int, int]]:
    """Publish in order; the (topic, partition, offset) each message got."""
    sent = [kafka.send(m.topic, key=m.key, value=m.value) for m in messages]
    kafka.flush()
    return [
        (md.topic, md.partition, md.offset) for md in (future.get(timeout=30) for future in sent)
    ]


def run_fuzz(make_services: MakeServices, bad_count: int, good_count: int) -> None:
    started = time.monotonic()
    services = make_services(topic_partitions=3)
    topics = services.settings.input_topics()
    fuzz = Fuzz(random.Random(SEED), topics)
    kafka = producer(services.kafka_config)
    publish(kafka, fuzz.openings())
    mixed = [fuzz.bad() for _ in range(bad_count)] + [fuzz.good() for _ in range(good_count)]
    fuzz.rng.shuffle(mixed)
    coordinates = publish(kafka, mixed)
    kafka.close()
    bad = {where: m.mutation for where, m in zip(coordinates, mixed, strict=True) if m.mutation}
    assert len(bad) == bad_count

    # Not about the parking bound: an email of an unknown account stays parked.
    consumer = services.consumer(clock=lambda: CLOCK, park_max_age=timedelta(days=3650))
    try:
        consumer.drain(timeout=240)
    finally:
        consumer.close()

    assert positions_at_end(services, list(topics.values())), "a partition stalled"
    recorder = services.ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    # An email for an account that does not exist yet is parked (it may open later);
    # every other bad message is a dead letter.
    early = {where for where, mutation in bad.items() if mutation == "unknown_account"}
    with recorder.datastore.transaction(commit=False) as curs:
        curs.execute(
            SQL("SELECT topic, kafka_partition, kafka_offset FROM {}.ledger_parked").format(
                Identifier(recorder.datastore.schema)
            )
        )
        parked = {(r["topic"], r["kafka_partition"], r["kafka_offset"]) for r in curs.fetchall()}
    assert parked == early
    rows = recorder.dead_letters(limit=bad_count + 100)
    assert len(rows) == bad_count - len(early)
    dead = {(r["topic"], r["kafka_partition"], r["kafka_offset"]): r["reason"] for r in rows}
    assert set(dead) == set(bad) - early
    for where, mutation in bad.items():
        if where in early:
            continue
        reason = dead[where]
        expected = REASONS.get(mutation)
        assert reason and (
            expected in reason
            if expected
            else reason.startswith(("invalid ", "not JSON", "unknown event type"))
        ), (mutation, reason)

    assert fuzz.platform["post"] > 1_000, "the seed must reach the charged tier"
    catch_up(services)
    reports = services.reports()
    for account in ("post", "pre"):
        [usage] = reports.usage(account, "2026-11")
        platform = fuzz.platform[account]
        assert (usage["platform_emails"], usage["custom_smtp_emails"]) == (
            platform,
            fuzz.smtp[account],
        ), account
        assert usage["charged_emails"] == max(0, platform - 1_000), account
        assert Decimal(usage["usage_amount_exact"]) == starter_usage(platform), account
    fee = Decimal("10.00")
    post, pre = starter_usage(fuzz.platform["post"]), starter_usage(fuzz.platform["pre"])
    assert Decimal(reports.balance("post")["balance_exact"]) == -(fee + post)
    assert Decimal(reports.balance("pre")["balance_exact"]) == fuzz.credits - fee - pre
    assert len(recorder.billable_contacts("shop", CLOCK)) == fuzz.contacts
    print(
        f"fuzz seed={SEED} messages={len(mixed)} bad={bad_count} good={good_count}"
        f" dead_letters={len(rows)} parked={len(parked)} emails={sum(fuzz.platform.values())}+{sum(fuzz.smtp.values())}smtp"
        f" credits={fuzz.credits} contacts={fuzz.contacts} seconds={time.monotonic() - started:.1f}"
        f" mutations={dict(sorted(fuzz.mutations.items()))}"
    )


def test_fuzzed_input_is_dead_lettered_exactly_and_good_input_billed_exactly(
    make_services: MakeServices,
) -> None:
    run_fuzz(make_services, bad_count=1_500, good_count=2_500)


@pytest.mark.chaos
@pytest.mark.timeout(900)
def test_ten_thousand_fuzzed_messages_are_dead_lettered_exactly_among_good_ones(
    make_services: MakeServices,
) -> None:
    run_fuzz(make_services, bad_count=10_000, good_count=10_000)
