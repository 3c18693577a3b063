"""Outbox: publishes sending blocked/unblocked to ``billing.account-status``.

The facts come from the stored history, not from the consumer: the publisher
follows the notification log, produces each status change with a stable
CloudEvent id (``<account uuid>:<event version>``), flushes, and only then
records its position. A crash between the flush and the position replays the
same ids, so a subscriber that dedupes on ``id`` sees each change once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.utils import get_topic
from kafka import KafkaProducer
from pydantic import BaseModel, ConfigDict

from ledger.emails.account import Account

SOURCE = "billing-ledger"


class AccountStatusData(BaseModel):
    model_config = ConfigDict(frozen=True)

    account_id: str
    sending: Literal["blocked", "unblocked"]
    balance: str
    currency: str


class AccountStatusChanged(BaseModel):
    """Outbound CloudEvent on ``billing.account-status``."""

    model_config = ConfigDict(frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str = SOURCE
    type: Literal["account.sending-blocked", "account.sending-unblocked"]
    time: datetime
    data: AccountStatusData


STATUS_TOPICS = (get_topic(Account.SendingBlocked), get_topic(Account.SendingUnblocked))


def status_message(event: Any) -> AccountStatusChanged:
    blocked = isinstance(event, Account.SendingBlocked)
    return AccountStatusChanged(
        id=f"{event.originator_id}:{event.originator_version}",
        type="account.sending-blocked" if blocked else "account.sending-unblocked",
        time=event.effective_at,
        data=AccountStatusData(
            account_id=event.account_id,
            sending="blocked" if blocked else "unblocked",
            balance=str(event.balance.rounded().amount),
            currency=event.balance.currency,
        ),
    )


class StatusTracking(PostgresTrackingRecorder):
    """Position of the publisher in the ledger's notification log."""


class AccountStatusPublisher:
    name = "account_status"

    def __init__(self, producer: KafkaProducer, topic: str, tracking: StatusTracking) -> None:
        self.producer = producer
        self.topic = topic
        self.tracking = tracking

    def process_batch(self, domain_events: Sequence[Any], tracking: Tracking) -> None:
        futures = []
        for event in domain_events:
            message = status_message(event)
            futures.append(
                self.producer.send(
                    self.topic,
                    key=message.data.account_id.encode(),
                    value=json.dumps(message.model_dump(mode="json")).encode(),
                )
            )
        self.producer.flush()
        for future in futures:
            future.get(timeout=30)  # flush() does not raise for a failed send; this does
        self.tracking.insert_tracking(tracking)
