"""Outbox of money chased: collection requests, payment-failure notices, suspensions.

From the stored ``CollectionRequested`` and ``DunningChanged`` events of both
account aggregates (:mod:`projections.outbox`: produced, acknowledged, then
the position recorded; stable ids, so each fact is seen once):

- ``collection.requested`` on ``billing.collections`` (the payment bridge
  charges the card): id ``<account uuid>:<version>``;
- ``notice.opened`` (a notice opened or updated: the panel upserts by
  ``notice_id``) and ``notice.resolved`` on ``billing.notices``;
- ``account.suspended`` / ``account.reinstated`` on ``billing.account-status``
  (a transition into ``suspended``, and out of it).

A ``DunningChanged`` stands for several messages: its notice changes in order,
then its transitions; the ``n``-th has id ``<account uuid>:<version>:<n>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.utils import get_topic
from kafka import KafkaProducer
from pydantic import BaseModel, ConfigDict

from ledger.contacts.account import ContactsAccount
from ledger.emails.account import Account
from ledger.payments.dunning import Transition
from ledger.payments.notices import NoticeChange
from projections.outbox import SOURCE, Outbox, Outgoing


class CollectionRequestedData(BaseModel):
    model_config = ConfigDict(frozen=True)

    account_id: str
    request_id: str
    reference: str
    amount: str
    currency: str
    attempt: int


class CollectionRequestedMessage(BaseModel):
    """Outbound CloudEvent on ``billing.collections``: collect ``amount`` (due now) for
    ``reference``; answer with ``payment.succeeded`` / ``payment.failed`` naming
    ``request_id``."""

    model_config = ConfigDict(frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str = SOURCE
    type: Literal["collection.requested"] = "collection.requested"
    time: datetime
    data: CollectionRequestedData


class NoticeData(BaseModel):
    model_config = ConfigDict(frozen=True)

    account_id: str
    notice_id: str
    kind: Literal["payment_failed", "overdue", "suspended"]
    reference: str
    amount_due: str
    currency: str
    reason: str
    attempt: int | None
    next_attempt_at: datetime | None
    opened_at: datetime
    resolved_at: datetime | None


class NoticeMessage(BaseModel):
    """Outbound CloudEvent on ``billing.notices``: the customer panel's pop-up.
    ``notice.opened`` is sent for a new notice and for each update of it (upsert by
    ``notice_id``); ``notice.resolved`` once, when it is settled."""

    model_config = ConfigDict(frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str = SOURCE
    type: Literal["notice.opened", "notice.resolved"]
    time: datetime
    data: NoticeData


class SuspensionData(BaseModel):
    model_config = ConfigDict(frozen=True)

    account_id: str
    status: Literal["suspended", "reinstated"]
    reference: str  # the document that suspended it, or whose payment reinstated it
    reason: str


class SuspensionMessage(BaseModel):
    """Outbound CloudEvent on ``billing.account-status``: the account is suspended (or
    reinstated) by dunning; an email account's sending is blocked meanwhile (its own
    ``account.sending-blocked`` follows)."""

    model_config = ConfigDict(frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str = SOURCE
    type: Literal["account.suspended", "account.reinstated"]
    time: datetime
    data: SuspensionData


REQUESTED = (ContactsAccount.CollectionRequested,)
DUNNING = (Account.DunningChanged, ContactsAccount.DunningChanged)
PAYMENTS_TOPICS = tuple(get_topic(cls) for cls in (*REQUESTED, *DUNNING))


def collection_message(event: Any) -> CollectionRequestedMessage:
    return CollectionRequestedMessage(
        id=f"{event.originator_id}:{event.originator_version}",
        time=event.effective_at,
        data=CollectionRequestedData(
            account_id=event.account_id,
            request_id=event.request_id,
            reference=event.reference,
            amount=str(event.amount.amount),
            currency=event.amount.currency,
            attempt=event.attempt,
        ),
    )


def notice_message(event: Any, change: NoticeChange, message_id: str) -> NoticeMessage:
    notice = change.notice
    resolved = change.change == "resolved"
    return NoticeMessage(
        id=message_id,
        type="notice.resolved" if resolved else "notice.opened",
        time=notice.resolved_at if resolved and notice.resolved_at else event.effective_at,
        data=NoticeData(
            account_id=event.account_id,
            notice_id=notice.notice_id,
            kind=notice.kind,
            reference=notice.reference,
            amount_due=str(notice.amount_due.amount),
            currency=notice.amount_due.currency,
            reason=notice.reason,
            attempt=notice.attempt,
            next_attempt_at=notice.next_attempt_at,
            opened_at=notice.opened_at,
            resolved_at=notice.resolved_at,
        ),
    )


def suspension_message(
    event: Any, transition: Transition, message_id: str
) -> SuspensionMessage | None:
    """None for a transition that neither enters nor leaves ``suspended``."""
    kind: Literal["account.suspended", "account.reinstated"]
    if transition.to_state == "suspended":
        status: Literal["suspended", "reinstated"] = "suspended"
        kind = "account.suspended"
    elif transition.from_state == "suspended":
        status, kind = "reinstated", "account.reinstated"
    else:
        return None
    return SuspensionMessage(
        id=message_id,
        type=kind,
        time=transition.at,
        data=SuspensionData(
            account_id=event.account_id,
            status=status,
            reference=transition.reference,
            reason=transition.reason,
        ),
    )


class PaymentsOutboxTracking(PostgresTrackingRecorder):
    """Position of the payments outbox in the ledger's notification log."""


class PaymentsOutbox(Outbox):
    name = "payments_outbox"

    def __init__(
        self,
        producer: KafkaProducer,
        tracking: PaymentsOutboxTracking,
        *,
        topic_collections: str,
        topic_notices: str,
        topic_account_status: str,
    ) -> None:
        super().__init__(producer, tracking)
        self.topic_collections = topic_collections
        self.topic_notices = topic_notices
        self.topic_account_status = topic_account_status

    def messages(self, domain_event: Any) -> Iterator[Outgoing]:
        account_id = domain_event.account_id
        if isinstance(domain_event, REQUESTED):
            yield Outgoing(self.topic_collections, account_id, collection_message(domain_event))
            return
        stem = f"{domain_event.originator_id}:{domain_event.originator_version}"
        n = 0
        for change in domain_event.notice_changes:
            message = notice_message(domain_event, change, f"{stem}:{n}")
            yield Outgoing(self.topic_notices, account_id, message)
            n += 1
        for transition in domain_event.transitions:
            suspension = suspension_message(domain_event, transition, f"{stem}:{n}")
            n += 1
            if suspension is not None:
                yield Outgoing(self.topic_account_status, account_id, suspension)
