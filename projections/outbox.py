"""What every outbox shares: from a batch of stored events, produce their messages,
wait for the broker's acknowledgement, and only then record the position.

The facts come from the stored history, not from the writer that recorded
them: a publisher (a :class:`projections.runner.Follower`) reads the events of
its topics, :meth:`Outbox.messages` turns each into the CloudEvents it stands
for, each with a stable id derived from the event (``<originator id>:<version>``,
``:<n>`` when one event stands for several messages). A crash between the
acknowledgement and the position replays the same ids, so a subscriber that
dedupes on ``id`` sees each fact once.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from eventsourcing.persistence import Tracking, TrackingRecorder
from kafka import KafkaProducer
from pydantic import BaseModel

#: The ``source`` of every CloudEvent the ledger produces.
SOURCE = "billing-ledger"
#: Seconds to wait for the broker to acknowledge a message (the role crashes rather
#: than record a position past a message that was not published).
SEND_TIMEOUT = 30.0


class Outgoing(NamedTuple):
    topic: str
    key: str  # the account id: a subscriber reads one account's messages in order
    message: BaseModel


class Outbox(ABC):
    name: str

    def __init__(self, producer: KafkaProducer, tracking: TrackingRecorder) -> None:
        self.producer = producer
        self.tracking = tracking

    @abstractmethod
    def messages(self, domain_event: Any) -> Iterable[Outgoing]:
        """The messages one stored event stands for, in a fixed order."""

    def process_batch(self, domain_events: Sequence[Any], tracking: Tracking) -> None:
        futures = [
            self.producer.send(
                out.topic,
                key=out.key.encode(),
                value=json.dumps(out.message.model_dump(mode="json")).encode(),
            )
            for event in domain_events
            for out in self.messages(event)
        ]
        self.producer.flush()
        for future in futures:
            future.get(timeout=SEND_TIMEOUT)  # flush() does not raise for a failed send
        self.tracking.insert_tracking(tracking)
