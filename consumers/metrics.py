"""Prometheus metrics of the consumers (served by ``ledger serve --metrics-port``)."""

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
