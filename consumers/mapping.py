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
    ReceivePayment,
    RecordContactChanges,
    RecordEmailsSent,
    RecordPaymentFailure,
    SentEmailItem,
)
from consumers.messages import Accepted, Fields, RecordLike, new_tuple
from ledger.contacts.billable import ContactState

CONTACT_EVENTS = frozenset({"contact.changed", "contact.deleted"})
PAYMENT_EVENTS = frozenset({"payment.succeeded", "payment.failed"})


def payment_id(event: Fields) -> str:
    """The CloudEvent's dedupe key as one string: what each allocation of the money names."""
    return f"{event['source']} {event['id']}"


def contact_state(event: Fields) -> ContactState:
    data = event["data"]
    if event["type"] == "contact.deleted":
        return ContactState.tombstone(data["contact_id"], data["version"])
    return ContactState(
        contact_id=data["contact_id"],
        version=data["version"],
        email=data["email"],
        phone=data["phone"],
        user_id=data["user_id"],
        chat_replied=data["chat_replied"],
        web_push=data["web_push"],
    )


def origin_of(record: RecordLike, event: Fields) -> Origin:
    """Built without re-validation: the message was validated against the contract."""
    return Origin(event["source"], event["id"], record.topic, record.partition, record.offset)


def to_commands(messages: Sequence[Accepted]) -> list[AccountCommand]:
    """Account messages become one command each, in order; the emails of a batch
    become one ``RecordEmailsSent`` per account, placed where its first email was,
    and so do contact changes (one ``RecordContactChanges``, in arrival order)."""
    # Each placeholder is the account id and which grouped command it stands for;
    # the command is built once its items are all gathered (not validated again).
    commands: list[AccountCommand | tuple[str, bool]] = []
    emails: dict[str, list[SentEmailItem]] = {}
    contacts: dict[str, list[ContactChangeItem]] = {}
    for record, event in messages:
        event_type = event["type"]
        data = event["data"]
        # The hot path, once per email: two tuples, no call of ours.
        if event_type == "email.sent":
            account_id = data["account_id"]
            items: list[Any] | None = emails.get(account_id)
            if items is None:
                items = emails[account_id] = []
                commands.append((account_id, True))
            origin = new_tuple(
                Origin,
                (
                    event["source"],
                    event["id"],
                    record.topic,
                    record.partition,
                    record.offset,
                    data["message_id"],
                ),
            )
            items.append(new_tuple(SentEmailItem, (event["time"], data["route"], origin)))
        elif event_type in CONTACT_EVENTS:
            account_id = data["account_id"]
            items = contacts.get(account_id)
            if items is None:
                items = contacts[account_id] = []
                commands.append((account_id, False))
            origin = Origin(
                event["source"],
                event["id"],
                record.topic,
                record.partition,
                record.offset,
                data["contact_id"],
            )
            items.append(ContactChangeItem(contact_state(event), event["time"], origin))
        else:
            commands.append(_account_command(record, event))
    return [
        cmd if not isinstance(cmd, tuple) else _grouped(*cmd, emails, contacts) for cmd in commands
    ]


def _account_command(record: RecordLike, event: Fields) -> AccountCommand:
    origin = origin_of(record, event)
    data, at, event_type = event["data"], event["time"], event["type"]
    if event_type == "account.opened":
        return OpenAccount(
            account_id=data["account_id"],
            plan=data["plan"],
            payment_mode=data["payment_mode"],
            currency=data["currency"],
            timezone=data["timezone"],
            tax_rate=data["tax_rate"],
            billing_period=data["billing_period"],
            products=tuple(data["products"]),
            at=at,
            origin=origin,
        )
    if event_type == "account.credit-purchased":
        return PurchaseCredit(
            account_id=data["account_id"],
            amount=data["amount"],
            reference=data["reference"] or event["id"],
            at=at,
            origin=origin,
        )
    if event_type == "account.plan-changed":
        products = data["products"]
        return ChangePlan(
            account_id=data["account_id"],
            plan=data["plan"],
            products=None if products is None else tuple(products),
            billing_period=data["billing_period"],
            at=at,
            origin=origin,
        )
    if event_type == "account.closed":
        return CloseAccount(account_id=data["account_id"], at=at, origin=origin)
    if event_type in PAYMENT_EVENTS:
        payment = {
            "account_id": data["account_id"],
            "payment_id": payment_id(event),
            "amount": data["amount"],
            "currency": data["currency"],
            "reference": data["reference"],
            "request_id": data["request_id"],
            "at": at,
            "origin": origin,
        }
        if event_type == "payment.succeeded":
            return ReceivePayment(**payment)
        return RecordPaymentFailure(**payment, reason=data["reason"], retryable=data["retryable"])
    raise ValueError(f"no command for event type {event_type!r}")


def _grouped(
    account_id: str,
    email: bool,
    emails: dict[str, list[SentEmailItem]],
    contacts: dict[str, list[ContactChangeItem]],
) -> AccountCommand:
    """An account's emails or contact changes of the batch as one command (its items
    were built from validated messages: not validated again)."""
    if email:
        return RecordEmailsSent.model_construct(
            account_id=account_id, emails=tuple(emails[account_id])
        )
    return RecordContactChanges.model_construct(
        account_id=account_id, changes=tuple(contacts[account_id])
    )
