"""A member that joins while the group's leader stops is given the partitions
(consumers/group_membership.py). On the embedded broker the group was wedged
for good when its leader left while the group was rebalancing: every member
waited for that departed leader's assignment."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaConsumer

from consumers.group_membership import group_consumer
from consumers.log_probe import LogProbe
from consumers.topics import ensure_topics
from ledger.entrypoints.settings import Settings

PARTITIONS = 4


@pytest.fixture
def member(settings_for: Callable[..., Settings]) -> Iterator[Callable[[str], KafkaConsumer]]:
    settings = settings_for()
    config = settings.kafka_config(settings.kafka_bootstrap or "")
    topic = f"rejoin-{uuid.uuid4().hex[:8]}"
    ensure_topics(config, [topic], PARTITIONS)
    probe = LogProbe(config)
    made: list[KafkaConsumer] = []

    def make(group: str) -> KafkaConsumer:
        consumer = group_consumer(config, group, probe, max_poll_interval_ms=10000)
        consumer.subscribe([topic])
        made.append(consumer)
        return consumer

    yield make
    for consumer in made:
        consumer.close()
    probe.close()


def _assigned(consumers: list[KafkaConsumer], timeout: float) -> None:
    """Poll the members back to back (as the service does) until each holds partitions."""
    deadline = time.monotonic() + timeout
    while not all(c.assignment() for c in consumers):
        for consumer in consumers:
            consumer.poll(timeout_ms=100)
        if time.monotonic() > deadline:
            held = [sorted(p.partition for p in c.assignment()) for c in consumers]
            raise AssertionError(f"members not all assigned after {timeout}s: {held}")


def test_a_member_joining_while_the_leader_stops_is_given_every_partition(
    member: Callable[[str], KafkaConsumer],
) -> None:
    group = f"rejoin-{uuid.uuid4().hex[:8]}"
    leader = member(group)
    _assigned([leader], timeout=60)  # alone: the group's leader, holding all
    assert len(leader.assignment()) == PARTITIONS

    # The leader is not polled from here on, so it does not rejoin: once the broker
    # has answered the joiner's JoinGroup (a new generation), the group is
    # rebalancing and waits for the leader. (kafka-python keeps the generation a
    # member was given in ``_generation``; no public reading of it mid-rebalance.)
    stable = leader._coordinator._generation.generation_id
    joiner = member(group)
    deadline = time.monotonic() + 60
    while joiner._coordinator._generation.generation_id <= stable:
        joiner.poll(timeout_ms=50)
        assert time.monotonic() < deadline, "the broker never answered the joiner"
    leader.close()  # the leader stops while the group rebalances

    _assigned([joiner], timeout=60)
    assert len(joiner.assignment()) == PARTITIONS
