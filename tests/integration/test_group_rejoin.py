"""A consumer group whose members all stopped can be joined again, whichever of
them stopped last (consumers/group_membership.py). On the embedded broker the
group was wedged for good when its leader left while the group was rebalancing:
every later member waited for that departed leader's assignment."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaConsumer

from consumers.group_membership import group_consumer
from consumers.log_probe import LogProbe
from consumers.topics import ensure_topics
from ledger.settings import Settings

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


@pytest.mark.parametrize("last", ["first member", "second member"])
def test_a_group_whose_members_all_stopped_is_joined_again(
    member: Callable[[str], KafkaConsumer], last: str
) -> None:
    group = f"rejoin-{uuid.uuid4().hex[:8]}"
    # One at a time: the first is the group's leader (two joining at once can leave
    # one of them unassigned for a while on the embedded broker, a separate matter).
    first = member(group)
    _assigned([first], timeout=60)
    second = member(group)
    _assigned([first, second], timeout=60)
    assert len(first.assignment()) + len(second.assignment()) == PARTITIONS

    # One of the two orders stops the group's leader last, after the other's
    # leaving has set the group rebalancing.
    stopping = [second, first] if last == "first member" else [first, second]
    for consumer in stopping:
        consumer.close()

    newcomer = member(group)
    _assigned([newcomer], timeout=60)
    assert len(newcomer.assignment()) == PARTITIONS
