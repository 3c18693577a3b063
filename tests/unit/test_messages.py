"""Decoding the input contract is a pure function of one record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from commands.models import OpenAccount, RecordContactChanges, RecordEmailsSent
from consumers.mapping import to_commands
from consumers.messages import TOPIC_TYPES, Accepted, Record, Refused, decode
from ledger.contacts import ContactState

EMAILS = TOPIC_TYPES["email_sent"]
ACCOUNTS = TOPIC_TYPES["accounts"]


def record(
    body: Any, key: str | None = "acme", topic: str = "billing.email-sent", offset: int = 7
) -> Record:
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Record(topic, 0, offset, key.encode() if key is not None else None, value)


def email(**data: Any) -> dict[str, Any]:
    body = {"account_id": "acme", "message_id": "<m1@x>", "route": "platform"}
    body.update(data)
    return {
        "specversion": "1.0",
        "id": "e1",
        "source": "urn:mta",
        "type": "email.sent",
        "time": "2026-11-30T23:59:59.999+01:00",
        "data": body,
        "extra": "tolerated",
    }


def credit(amount: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "c1",
        "source": "urn:panel",
        "type": "account.credit-purchased",
        "time": "2026-11-01T00:00:00Z",
        "data": {"account_id": "acme", "amount": amount},
    }


def test_a_valid_email_is_accepted_with_its_dedupe_key() -> None:
    result = decode(record(email()), EMAILS)
    assert isinstance(result, Accepted)
    assert result.dedupe_key == ("urn:mta", "e1")
    assert result.event.data.route == "platform"


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        (b"", "acme", "empty message: no CloudEvent in the record value"),
        (b"{not json", "acme", "not JSON"),
        (b"[1, 2]", "acme", "not a CloudEvent: the message is not a JSON object"),
        ({**email(), "type": "email.bounced"}, "acme", "unknown event type 'email.bounced'"),
        (email(route="smtp-relay"), "acme", "invalid email.sent: email.sent.data.route"),
        (
            {k: v for k, v in email().items() if k != "time"},
            "acme",
            "invalid email.sent: email.sent.time",
        ),
        (email(), "other", "Kafka key 'other' is not the account id 'acme'"),
        (email(), None, "Kafka key None is not the account id 'acme'"),
    ],
)
def test_bad_records_are_refused_with_a_clear_reason(
    body: Any, key: str | None, reason: str
) -> None:
    result = decode(record(body, key=key), EMAILS)
    assert isinstance(result, Refused)
    assert result.reason.startswith(reason), result.reason


def test_an_event_on_the_wrong_topic_is_refused() -> None:
    result = decode(record(email()), ACCOUNTS)
    assert isinstance(result, Refused)
    assert "does not belong on topic" in result.reason


def test_a_credit_amount_as_a_json_number_is_refused() -> None:
    result = decode(record(credit(10.5), topic="billing.accounts"), ACCOUNTS)
    assert isinstance(result, Refused)
    assert "amounts are strings" in result.reason


def test_emails_of_a_batch_become_one_command_per_account_in_order() -> None:
    opened = {
        "specversion": "1.0",
        "id": "o1",
        "source": "urn:panel",
        "type": "account.opened",
        "time": "2026-11-01T00:00:00Z",
        "data": {
            "account_id": "acme",
            "plan": "email-starter",
            "payment_mode": "prepaid",
            "currency": "EUR",
        },
    }
    accepted = [
        decode(record(opened, topic="billing.accounts", offset=1), ACCOUNTS),
        decode(record({**email(), "id": "e1"}, offset=2), EMAILS),
        decode(record({**email(account_id="beta"), "id": "e2"}, key="beta", offset=3), EMAILS),
        decode(record({**email(), "id": "e3"}, offset=4), EMAILS),
    ]
    commands = to_commands([a for a in accepted if isinstance(a, Accepted)])
    assert [type(c) for c in commands] == [OpenAccount, RecordEmailsSent, RecordEmailsSent]
    acme, beta = commands[1], commands[2]
    assert isinstance(acme, RecordEmailsSent) and isinstance(beta, RecordEmailsSent)
    assert [e.origin.offset for e in acme.emails] == [2, 4]
    assert [e.origin.event_id for e in beta.emails] == ["e2"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({**email(), "type": ["email.sent"]}, "unknown event type"),
        (b"[" * 100_000 + b"]" * 100_000, "not"),
        ({**email(), "id": "e1\u0000"}, "NUL characters"),
        ({**email(), "time": "9999-12-01T00:00:00Z"}, "invalid email.sent: email.sent.time"),
        ({**email(), "time": "0001-01-01T00:00:00+05:00"}, "invalid email.sent: email.sent.time"),
    ],
)
def test_hostile_records_are_refused_not_raised(body: Any, reason: str) -> None:
    result = decode(record(body), EMAILS)
    assert isinstance(result, Refused)
    assert result.reason.startswith(reason), result.reason


def test_an_absurd_credit_amount_is_refused() -> None:
    result = decode(record(credit("1E+999999999"), topic="billing.accounts"), ACCOUNTS)
    assert isinstance(result, Refused)


def test_a_huge_dead_letter_is_truncated_below_the_kafka_message_limit() -> None:
    from consumers.runner import dead_letter_message

    message = dead_letter_message(record(b"\x00" * 200_000), "not JSON")
    assert len(message) < 1_000_000
    assert json.loads(message)["payload_truncated"] is True


def test_a_directory_is_not_a_time_zone() -> None:
    from ledger.periods import InvalidTimezone, zone

    with pytest.raises(InvalidTimezone):
        zone("Europe")
    with pytest.raises(InvalidTimezone):
        zone("x" * 5000)


CONTACTS = TOPIC_TYPES["contact_changed"]


def contact(**data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "c1",
        "source": "urn:crm",
        "type": "contact.changed",
        "time": "2026-11-01T00:00:00Z",
        "data": {"account_id": "acme", "contact_id": "k1", "version": 3, **data},
    }


def test_a_contact_change_maps_to_the_state_it_describes() -> None:
    body = contact(email="a@x", phone=None, chat_replied=True, unknown_field="tolerated")
    result = decode(record(body, topic="billing.contact-changed"), CONTACTS)
    assert isinstance(result, Accepted)
    [command] = to_commands([result])
    assert isinstance(command, RecordContactChanges)
    [item] = command.changes
    assert item.state == ContactState("k1", 3, email="a@x", chat_replied=True)
    assert item.origin.message_id == "k1"  # an auditor traces a contact by its id


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            {"contact_id": " \t"},
            "invalid contact.changed: contact.changed.data.contact_id: Value error, must not",
        ),
        (
            {"contact_id": "\u2003"},
            "invalid contact.changed: contact.changed.data.contact_id: Value error, must not",
        ),
        (
            {"version": "3"},
            "invalid contact.changed: contact.changed.data.version: Input should be a valid int",
        ),
        (
            {"version": 3.0},
            "invalid contact.changed: contact.changed.data.version: Input should be a valid int",
        ),
        (
            {"version": -1},
            "invalid contact.changed: contact.changed.data.version: Input should be greater",
        ),
        (
            {"version": 2**63},
            "invalid contact.changed: contact.changed.data.version: Input should be less",
        ),
        (
            {"web_push": "yes"},
            "invalid contact.changed: contact.changed.data.web_push: Input should be a valid bool",
        ),
        (
            {"email": 42},
            "invalid contact.changed: contact.changed.data.email: Input should be a valid string",
        ),
    ],
)
def test_bad_contact_changes_are_refused_with_the_field(data: dict[str, Any], reason: str) -> None:
    result = decode(record(contact(**data), topic="billing.contact-changed"), CONTACTS)
    assert isinstance(result, Refused)
    assert result.reason.startswith(reason), result.reason
