"""Prometheus metrics of the consumers (served by ``ledger serve --metrics-port``)."""

import contextlib

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("ledger_messages_total", "Consumed messages by outcome", ["topic", "outcome"])
DEAD_LETTERS = Counter(
    "ledger_dead_letters_total", "Messages sent to the dead-letter topic", ["topic"]
)
CONSUMER_LAG = Gauge(
    "ledger_consumer_lag", "Records not yet consumed, per partition", ["topic", "partition"]
)
BATCH_SECONDS = Histogram(
    "ledger_batch_seconds", "Time to apply and commit one partition batch", ["topic"]
)
PARTITION_HELD = Gauge(
    "ledger_partition_held",
    "1 while a partition is not read because its stored position is outside its log",
    ["topic", "partition"],
)
PARKED = Gauge(
    "ledger_parked",
    "Facts parked until their account opens, and replayed dead letters waiting (whole table)",
)
REDRIVEN = Counter(
    "ledger_parked_redriven_total",
    "Parked facts re-driven, by outcome (applied, duplicate, dead_letter, still_parked, expired)",
    ["topic", "outcome"],
)


def report_position(topic: str, partition: int, *, lag: int, held: bool) -> None:
    """Lag and hold of a partition this process reads, as its last check found them."""
    CONSUMER_LAG.labels(topic, str(partition)).set(lag)
    PARTITION_HELD.labels(topic, str(partition)).set(1 if held else 0)


def forget_partition(topic: str, partition: int) -> None:
    """Another member reports this partition now: no stale lag or hold from this one."""
    for gauge in (CONSUMER_LAG, PARTITION_HELD):
        with contextlib.suppress(KeyError):
            gauge.remove(topic, str(partition))
