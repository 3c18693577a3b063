"""Publishes the hash chain's head to ``billing.audit``, so that a rewrite of the
history (events and links together) is caught later against a head kept where
the database's writers cannot change it (docs/chain.md).

Every ``audit_head_interval`` the publisher reads the head and, when it moved,
produces it as a CloudEvent whose id is the head's position: a head published
again after a restart is the same message, and a subscriber that dedupes on
``id`` keeps each once.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Literal, Protocol

import structlog
from kafka import KafkaProducer
from pydantic import BaseModel, ConfigDict

from commands.chain import Head
from projections.outbox import SOURCE

log = structlog.get_logger(__name__)

#: Seconds to wait for the broker to acknowledge a head (the role crashes, and
#: ``serve`` stops, rather than reporting a head published that was not).
SEND_TIMEOUT = 30.0


class ChainHeadData(BaseModel):
    model_config = ConfigDict(frozen=True)

    position: int
    hash: str


class ChainHeadPublished(BaseModel):
    """Outbound CloudEvent on ``billing.audit``: the chain up to ``position`` hashes to
    ``hash`` (SHA-256, hex); ``ledger audit chain --against POSITION:HASH`` checks it."""

    model_config = ConfigDict(frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str = SOURCE
    type: Literal["audit.chain-head"] = "audit.chain-head"
    time: datetime
    data: ChainHeadData


def head_message(head: Head, at: datetime) -> ChainHeadPublished:
    return ChainHeadPublished(
        id=f"chain-head:{head.position}",
        time=at,
        data=ChainHeadData(position=head.position, hash=head.hash.hex()),
    )


class HeadSource(Protocol):
    def chain_head(self) -> Head | None: ...


class ChainHeadPublisher:
    def __init__(
        self, producer: KafkaProducer, topic: str, recorder: HeadSource, interval: float
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.recorder = recorder
        self.interval = interval
        self.published: Head | None = None

    def publish_if_moved(self) -> Head | None:
        head = self.recorder.chain_head()
        if head is None or head == self.published:
            return None
        message = head_message(head, datetime.now(UTC))
        sent = self.producer.send(
            self.topic, key=b"chain", value=message.model_dump_json().encode("utf-8")
        )
        sent.get(timeout=SEND_TIMEOUT)  # raises if the broker did not take it: not published
        self.published = head
        log.info("chain_head_published", position=head.position, hash=head.hash.hex())
        return head

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.publish_if_moved()
            stop.wait(self.interval)
