"""From validated messages to commands: a pure function of a batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from commands.models import (
    AccountCommand,
    ChangePlan,
    CloseAccount,
    ContactChangeItem,
    OpenAccount,
    Origin,
    PurchaseCredit,
    RecordContactChanges,
    RecordEmailsSent,
    SentEmailItem,
)
from consumers.messages import (
    Accepted,
    AccountClosedEvent,
    AccountOpenedEvent,
    ContactChangedEvent,
    ContactDeletedEvent,
    CreditPurchasedEvent,
    EmailSentEvent,
    PlanChangedEvent,
)
from ledger.contacts.billable import ContactState

CONTACT_EVENTS = (ContactChangedEvent, ContactDeletedEvent)


def contact_state(event: ContactChangedEvent | ContactDeletedEvent) -> ContactState:
    if isinstance(event, ContactDeletedEvent):
        return ContactState.tombstone(event.data.contact_id, event.data.version)
    data = event.data
    return ContactState(
        contact_id=data.contact_id,
        version=data.version,
        email=data.email,
        phone=data.phone,
        user_id=data.user_id,
        chat_replied=data.chat_replied,
        web_push=data.web_push,
    )


def origin_of(message: Accepted) -> Origin:
    """Built without re-validation: the message was validated against the contract."""
    event = message.event
    return Origin(
        source=event.source,
        event_id=event.id,
        topic=message.record.topic,
        partition=message.record.partition,
        offset=message.record.offset,
    )


def to_commands(messages: Sequence[Accepted]) -> list[AccountCommand]:
    """Account messages become one command each, in order; the emails of a batch
    become one ``RecordEmailsSent`` per account, placed where its first email was,
    and so do contact changes (one ``RecordContactChanges``, in arrival order)."""
    commands: list[AccountCommand] = []
    emails: dict[str, list[SentEmailItem]] = {}
    contacts: dict[str, list[ContactChangeItem]] = {}
    for message in messages:
        event = message.event
        data = event.data
        # The hot paths: emails and contact changes, grouped per account.
        kind = type(event)
        if kind is EmailSentEvent or kind in CONTACT_EVENTS:
            record = message.record
            email = kind is EmailSentEvent
            origin = Origin(
                event.source,
                event.id,
                record.topic,
                record.partition,
                record.offset,
                data.message_id if email else data.contact_id,
            )
            bucket: dict[str, list[Any]] = emails if email else contacts
            items = bucket.get(data.account_id)
            if items is None:
                items = bucket[data.account_id] = []
                commands.append(
                    RecordEmailsSent(account_id=data.account_id, emails=())
                    if email
                    else RecordContactChanges(account_id=data.account_id, changes=())
                )
            items.append(
                SentEmailItem(event.time, data.route, origin)
                if email
                else ContactChangeItem(contact_state(event), event.time, origin)
            )
            continue
        origin = origin_of(message)
        if isinstance(event, AccountOpenedEvent):
            commands.append(
                OpenAccount(
                    account_id=data.account_id,
                    plan=data.plan,
                    payment_mode=data.payment_mode,
                    currency=data.currency,
                    timezone=data.timezone,
                    tax_rate=data.tax_rate,
                    billing_period=data.billing_period,
                    products=tuple(data.products),
                    at=event.time,
                    origin=origin,
                )
            )
        elif isinstance(event, CreditPurchasedEvent):
            commands.append(
                PurchaseCredit(
                    account_id=data.account_id,
                    amount=data.amount,
                    reference=data.reference or event.id,
                    at=event.time,
                    origin=origin,
                )
            )
        elif isinstance(event, PlanChangedEvent):
            commands.append(
                ChangePlan(
                    account_id=data.account_id,
                    plan=data.plan,
                    products=None if data.products is None else tuple(data.products),
                    billing_period=data.billing_period,
                    at=event.time,
                    origin=origin,
                )
            )
        elif isinstance(event, AccountClosedEvent):
            commands.append(CloseAccount(account_id=data.account_id, at=event.time, origin=origin))
    return [_filled(cmd, emails, contacts) for cmd in commands]


def _filled(
    cmd: AccountCommand,
    emails: dict[str, list[SentEmailItem]],
    contacts: dict[str, list[ContactChangeItem]],
) -> AccountCommand:
    """The per-account placeholders with their items (built once, not re-validated)."""
    if isinstance(cmd, RecordEmailsSent):
        return RecordEmailsSent.model_construct(
            account_id=cmd.account_id, emails=tuple(emails[cmd.account_id])
        )
    if isinstance(cmd, RecordContactChanges):
        return RecordContactChanges.model_construct(
            account_id=cmd.account_id, changes=tuple(contacts[cmd.account_id])
        )
    return cmd
