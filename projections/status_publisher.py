"""Outbox: publishes sending blocked/unblocked to ``billing.account-status``.

The facts come from the stored history, not from the consumer
(:mod:`projections.outbox`): each status change is produced with a stable
CloudEvent id (``<account uuid>:<event version>``) before the position is
recorded, so a subscriber that dedupes on ``id`` sees each change once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.utils import get_topic
from kafka import KafkaProducer
from pydantic import BaseModel, ConfigDict

from ledger.emails.account import Account
from projections.outbox import SOURCE, Outbox, Outgoing


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


class AccountStatusPublisher(Outbox):
    name = "account_status"

    def __init__(self, producer: KafkaProducer, topic: str, tracking: StatusTracking) -> None:
        super().__init__(producer, tracking)
        self.topic = topic

    def messages(self, domain_event: Any) -> Iterator[Outgoing]:
        message = status_message(domain_event)
        yield Outgoing(self.topic, message.data.account_id, message)
