"""From validated messages to commands: a pure function of a batch."""

from __future__ import annotations

from collections.abc import Sequence

from commands.models import (
    AccountCommand,
    ChangePlan,
    CloseAccount,
    OpenAccount,
    Origin,
    PurchaseCredit,
    RecordEmailsSent,
    SentEmailItem,
)
from consumers.messages import (
    Accepted,
    AccountClosedEvent,
    AccountOpenedEvent,
    CreditPurchasedEvent,
    EmailSentEvent,
    PlanChangedEvent,
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
        message_id=getattr(event.data, "message_id", None),
    )


def to_commands(messages: Sequence[Accepted]) -> list[AccountCommand]:
    """Account messages become one command each, in order; the emails of a batch
    become one ``RecordEmailsSent`` per account, placed where its first email was."""
    commands: list[AccountCommand] = []
    emails: dict[str, list[SentEmailItem]] = {}
    for message in messages:
        event = message.event
        data = event.data
        if type(event) is EmailSentEvent:  # the hot path: most messages are emails
            record = message.record
            origin = Origin(
                event.source,
                event.id,
                record.topic,
                record.partition,
                record.offset,
                data.message_id,
            )
            items = emails.get(data.account_id)
            if items is None:
                items = emails[data.account_id] = []
                commands.append(RecordEmailsSent(account_id=data.account_id, emails=()))
            items.append(SentEmailItem(event.time, data.route, origin))
            continue
        origin = origin_of(message)
        if isinstance(event, EmailSentEvent):
            if data.account_id not in emails:
                emails[data.account_id] = []
                commands.append(RecordEmailsSent(account_id=data.account_id, emails=()))
            emails[data.account_id].append(SentEmailItem(event.time, data.route, origin))
        elif isinstance(event, AccountOpenedEvent):
            commands.append(
                OpenAccount(
                    account_id=data.account_id,
                    plan=data.plan,
                    payment_mode=data.payment_mode,
                    currency=data.currency,
                    timezone=data.timezone,
                    tax_rate=data.tax_rate,
                    billing_period=data.billing_period,
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
                ChangePlan(account_id=data.account_id, plan=data.plan, at=event.time, origin=origin)
            )
        elif isinstance(event, AccountClosedEvent):
            commands.append(CloseAccount(account_id=data.account_id, at=event.time, origin=origin))
    return [
        RecordEmailsSent.model_construct(
            account_id=cmd.account_id, emails=tuple(emails[cmd.account_id])
        )
        if isinstance(cmd, RecordEmailsSent)
        else cmd
        for cmd in commands
    ]
