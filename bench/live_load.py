"""The live benchmark's two helpers, each run in a process of its own so that neither
shares an interpreter (and its GIL) with the other or with the benchmark's driver,
and so that each can report its own CPU time: the steady publisher and the poller."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from typing import Any

import psycopg
from lag import Sightings

from consumers.upstream_publisher import Upstream, producer

#: How often the publisher wakes to send what has fallen due (event time = that wake).
TICK = 0.005
EMAIL_SOURCE = "urn:bench:live-mta"


@dataclass(frozen=True)
class Published:
    emails: int
    #: Wall clock (as the stored events' timestamps) of the first and the last send.
    started_at: float
    ended_at: float
    cpu_seconds: float
    #: The longest a message waited past its due time (the publisher keeping up: ~TICK).
    most_behind: float


def publish_steadily(
    kafka_config: dict[str, Any], topic: str, accounts: list[str], rate: int, seconds: float
) -> Published:
    """``rate`` email.sent per second for ``seconds``, round robin over ``accounts``.

    Paced by a deadline clock: message ``i`` falls due at ``start + i / rate``, and each
    wake sends every message due by then, so a slow wake delays messages but never
    lowers the rate (no drift from sleeping per message).
    """
    kafka = producer(kafka_config)
    mta = Upstream(EMAIL_SOURCE)
    total = round(rate * seconds)
    sent, most_behind = 0, 0.0
    cpu_started = time.process_time()
    started_at = time.time()
    started = time.monotonic()
    while sent < total:
        now = time.monotonic()
        due = min(total, int((now - started) * rate) + 1)
        if due > sent:
            most_behind = max(most_behind, now - (started + sent / rate))
            at = datetime.now(UTC)
            for i in range(sent, due):
                account = accounts[i % len(accounts)]
                data = {"account_id": account, "message_id": f"<{i}@live>", "route": "platform"}
                message = mta.event(topic, "email.sent", at, data)
                kafka.send(topic, key=message.key.encode(), value=message.value)
            sent = due
        time.sleep(max(0.0, TICK - (time.monotonic() - now)))
    ended_at = time.time()
    kafka.flush()
    kafka.close()
    cpu = time.process_time() - cpu_started
    return Published(sent, started_at, ended_at, cpu, most_behind)


@dataclass
class Polled:
    balances: dict[str, Sightings] = field(default_factory=dict)
    usage: dict[str, Sightings] = field(default_factory=dict)
    polls: int = 0
    cpu_seconds: float = 0.0


BALANCE_VERSIONS = "SELECT account_uuid::text, version FROM balances"
#: Summed over months: one account's count then equals its emails billed so far.
USAGE_COUNTS = (
    "SELECT account_uuid::text, sum(platform_emails)::bigint FROM monthly_usage GROUP BY 1"
)


def poll_projections(database_url: str, interval: float, stop: Event) -> Polled:
    """Read both projections every ``interval`` seconds (a deadline clock again) until
    ``stop``, then once more: whatever the driver saw before it stopped us, we saw too.

    A row is "seen" when the query that returned it has returned: its commit came
    before that, and after the previous poll began, so the times it gives are upper
    bounds of commit times by at most one interval plus a query.
    """
    polled = Polled()
    cpu_started = time.process_time()
    with psycopg.connect(database_url, autocommit=True) as conn:
        next_poll = time.monotonic()
        while True:
            last = stop.is_set()
            _sight(polled.balances, conn.execute(BALANCE_VERSIONS).fetchall())
            _sight(polled.usage, conn.execute(USAGE_COUNTS).fetchall())
            polled.polls += 1
            if last:
                break
            next_poll += interval
            time.sleep(max(0.0, next_poll - time.monotonic()))
    polled.cpu_seconds = time.process_time() - cpu_started
    return polled


def _sight(sightings: dict[str, Sightings], rows: list[tuple[str, int]]) -> None:
    at = time.time()  # wall clock, as the stored events' timestamps are
    for account, value in rows:
        sightings.setdefault(account, Sightings()).saw(value, at)
