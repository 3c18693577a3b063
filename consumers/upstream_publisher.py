"""Building and publishing contract-conforming CloudEvents: for the demo, the
tests and the benchmarks, which play the upstream systems."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kafka import KafkaProducer


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: str
    value: bytes


@dataclass
class Upstream:
    """A fake upstream system: makes CloudEvents with its own ``source``."""

    source: str
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def event(
        self,
        topic: str,
        event_type: str,
        time: datetime,
        data: dict[str, Any],
        event_id: str | None = None,
    ) -> Outgoing:
        body = {
            "specversion": "1.0",
            "id": event_id or f"{self.source.rsplit('/', 1)[-1]}-{next(self.ids)}",
            "source": self.source,
            "type": event_type,
            "time": time.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": data,
        }
        return Outgoing(topic, str(data.get("account_id", "")), json.dumps(body).encode())


def producer(kafka_config: dict[str, Any]) -> KafkaProducer:
    return KafkaProducer(**kafka_config, acks="all", linger_ms=10, batch_size=512 * 1024)


def publish(kafka: KafkaProducer, messages: Iterable[Outgoing]) -> int:
    count = 0
    for message in messages:
        kafka.send(message.topic, key=message.key.encode(), value=message.value)
        count += 1
    kafka.flush()
    return count


def raw(topic: str, key: str | None, value: bytes) -> Outgoing:
    """A message exactly as given, e.g. malformed on purpose."""
    return Outgoing(topic, key or "", value)
