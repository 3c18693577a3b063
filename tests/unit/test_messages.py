"""Decoding the input contract is a pure function of one record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.models import (
    OpenAccount,
    ReceivePayment,
    RecordContactChanges,
    RecordEmailsSent,
    RecordPaymentFailure,
)
from consumers.mapping import to_commands
from consumers.messages import TOPIC_TYPES, Accepted, Record, Refused, decode
from ledger.contacts.billable import ContactState

EMAILS = TOPIC_TYPES["email_sent"]
ACCOUNTS = TOPIC_TYPES["accounts"]
#: The latest event time accepted in these tests (the consumer's clock plus its skew).
LATEST = datetime(2026, 12, 1, tzinfo=UTC)


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
    result = decode(record(email()), EMAILS, latest_time=LATEST)
    assert isinstance(result, Accepted)
    assert result.dedupe_key == ("urn:mta", "e1")
    assert result.event["data"]["route"] == "platform"


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        (b"", "acme", "empty message: no CloudEvent in the record value"),
        (b"{not json", "acme", "not JSON"),
        # json.loads would read these two bytes as a UTF-16 mark and say something else
        (b'\xff\xfe{"id": "e1"}', "acme", "not UTF-8: byte 0 (b'\\xff') invalid start byte"),
        (b"[1, 2]", "acme", "not a CloudEvent: the message is not a JSON object"),
        ({**email(), "type": "email.bounced"}, "acme", "unknown event type 'email.bounced'"),
        (
            {k: v for k, v in email().items() if k != "type"},
            "acme",
            "invalid CloudEvent: type: Field required",
        ),
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
    result = decode(record(body, key=key), EMAILS, latest_time=LATEST)
    assert isinstance(result, Refused)
    assert result.reason.startswith(reason), result.reason


def test_an_event_on_the_wrong_topic_is_refused() -> None:
    result = decode(record(email()), ACCOUNTS, latest_time=LATEST)
    assert isinstance(result, Refused)
    assert "does not belong on topic" in result.reason


def test_a_credit_amount_as_a_json_number_is_refused() -> None:
    result = decode(record(credit(10.5), topic="billing.accounts"), ACCOUNTS, latest_time=LATEST)
    assert isinstance(result, Refused)
    assert result.reason == (
        "invalid account.credit-purchased: account.credit-purchased.data.amount: " + AMOUNT_RULE
    )


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
        decode(record(opened, topic="billing.accounts", offset=1), ACCOUNTS, latest_time=LATEST),
        decode(record({**email(), "id": "e1"}, offset=2), EMAILS, latest_time=LATEST),
        decode(
            record({**email(account_id="beta"), "id": "e2"}, key="beta", offset=3),
            EMAILS,
            latest_time=LATEST,
        ),
        decode(record({**email(), "id": "e3"}, offset=4), EMAILS, latest_time=LATEST),
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
    result = decode(record(body), EMAILS, latest_time=LATEST)
    assert isinstance(result, Refused)
    assert result.reason.startswith(reason), result.reason


def test_an_absurd_credit_amount_is_refused() -> None:
    result = decode(
        record(credit("1E+999999999"), topic="billing.accounts"), ACCOUNTS, latest_time=LATEST
    )
    assert isinstance(result, Refused)


def test_a_huge_dead_letter_is_truncated_below_the_kafka_message_limit() -> None:
    from consumers.dead_letter import dead_letter_message

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
    result = decode(record(body, topic="billing.contact-changed"), CONTACTS, latest_time=LATEST)
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
            {"email": 42},
            "invalid contact.changed: contact.changed.data.email: Input should be a valid string",
        ),
        (
            {"phone": "1" * 1025},
            "invalid contact.changed: contact.changed.data.phone: String should have at most 1024",
        ),
    ],
)
def test_bad_contact_changes_are_refused_with_the_field(data: dict[str, Any], reason: str) -> None:
    result = decode(
        record(contact(**data), topic="billing.contact-changed"), CONTACTS, latest_time=LATEST
    )
    assert isinstance(result, Refused)
    assert result.reason.startswith(reason), result.reason


# ---------------------------------------------------------------- strict input
# Each rule of consumers/contract.py, with the exact reason a producer is given.
# The rule texts are written out here (not imported) so that a changed text fails.

AMOUNT_RULE = (
    "must be a JSON string of ASCII digits, with an optional fractional part of at most 3 digits,"
    ' e.g. "25.00" (no sign, exponent, separator or space; a JSON number may already be inexact)'
)
IDENTIFIER_RULE = (
    "must be a string of 1 to 256 characters without leading or trailing whitespace"
    " and without control or invisible characters"
)
TIME_RULE = (
    "must be an RFC 3339 time with seconds and a UTC offset, from 1970 on,"
    " e.g. 2026-11-30T23:59:59.999+01:00"
)
TAX_RATE_RULE = (
    "must be a JSON string of a fraction from 0 to below 1 with at most 6 decimal places,"
    ' e.g. "0.21" for 21%'
)
CURRENCY_RULE = (
    "must be an ISO 4217 currency code the ledger knows:"
    " AUD, BHD, CAD, CHF, CZK, DKK, EUR, GBP, JPY, KRW, KWD, NOK, PLN, SEK, USD"
)


def opened(**data: Any) -> dict[str, Any]:
    body = {"account_id": "acme", "plan": "email-starter", "payment_mode": "prepaid"}
    return {
        "specversion": "1.0",
        "id": "o1",
        "source": "urn:panel",
        "type": "account.opened",
        "time": "2026-11-01T00:00:00Z",
        "data": {**body, "currency": "EUR", **data},
    }


def refusal(body: Any, types: frozenset[str] = EMAILS, **where: Any) -> str:
    result = decode(record(body, **where), types, latest_time=LATEST)
    assert isinstance(result, Refused), result
    return result.reason


def accepted(body: Any, types: frozenset[str] = EMAILS, **where: Any) -> Any:
    result = decode(record(body, **where), types, latest_time=LATEST)
    assert isinstance(result, Accepted), result
    return result.event


@pytest.mark.parametrize(
    "amount",
    [
        "1_000",  # Decimal("1_000") is 1000
        "\uff11\uff12",  # fullwidth 12
        "\u0663",  # Arabic-Indic 3
        " 7 ",
        "7\n",
        "+5",
        "-5",
        "5.",
        ".5",
        "1e3",
        "1E+999999999",
        "NaN",
        "Infinity",
        "0x10",
        "1,000",
        "007",
        "0.0001",  # more places than any currency has
        "1000000000000",  # 13 integer digits: above any credit
        "",
        10.5,
        10,
        True,
        None,
    ],
)
def test_a_credit_amount_that_is_not_a_plain_decimal_string_is_refused(amount: Any) -> None:
    assert refusal(credit(amount), ACCOUNTS, topic="billing.accounts") == (
        "invalid account.credit-purchased: account.credit-purchased.data.amount: " + AMOUNT_RULE
    )


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0", Decimal("0")),
        ("25", Decimal("25")),
        ("25.5", Decimal("25.5")),
        ("25.50", Decimal("25.50")),
        # Three places pass the contract; the account's currency decides (EUR: refused,
        # ledger.money.check_minor_units, tests/unit/test_account.py).
        ("0.001", Decimal("0.001")),
        ("999999999999.999", Decimal("999999999999.999")),
    ],
)
def test_a_plain_decimal_string_amount_is_taken_exactly_as_written(
    amount: str, expected: Decimal
) -> None:
    event = accepted(credit(amount), ACCOUNTS, topic="billing.accounts")
    assert event["data"]["amount"] == expected
    assert event["data"]["amount"].as_tuple() == expected.as_tuple()  # "25.50" keeps its places


BAD_IDENTIFIERS = [
    "",
    " \t",
    "\u2003",  # em space: blank
    " acme",
    "acme ",
    "acme\t",
    "\u3000acme",  # ideographic space
    "ac\nme",
    "ac\x01me",
    "ac\x7fme",  # DEL
    "ac\x85me",  # C1 next line
    "\u200bacme",  # zero-width space
    "ac\u202eme",  # right-to-left override
    "acme\ufeff",  # byte order mark
    "x" * 257,
    42,
    None,
    ["acme"],
]


@pytest.mark.parametrize("value", BAD_IDENTIFIERS)
@pytest.mark.parametrize("field", ["id", "source"])
def test_a_bad_cloudevent_id_or_source_is_refused(field: str, value: Any) -> None:
    assert (
        refusal({**email(), field: value})
        == f"invalid email.sent: email.sent.{field}: {IDENTIFIER_RULE}"
    )


@pytest.mark.parametrize("value", BAD_IDENTIFIERS)
def test_a_bad_account_id_is_refused_before_the_key_is_compared(value: Any) -> None:
    assert refusal(email(account_id=value)) == (
        f"invalid email.sent: email.sent.data.account_id: {IDENTIFIER_RULE}"
    )


@pytest.mark.parametrize("value", BAD_IDENTIFIERS)
def test_a_bad_message_or_contact_id_is_refused(value: Any) -> None:
    assert refusal(email(message_id=value)) == (
        f"invalid email.sent: email.sent.data.message_id: {IDENTIFIER_RULE}"
    )
    assert refusal(contact(contact_id=value), CONTACTS, topic="billing.contact-changed") == (
        f"invalid contact.changed: contact.changed.data.contact_id: {IDENTIFIER_RULE}"
    )


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (opened(plan=" email-starter"), "data.plan"),
        (opened(products=["chat", "chat\n"]), "data.products.1"),
        (
            {**credit("5.00"), "data": {"account_id": "acme", "amount": "5", "reference": ""}},
            "data.reference",
        ),
    ],
)
def test_plan_product_and_reference_ids_follow_the_identifier_rule(
    body: dict[str, Any], where: str
) -> None:
    kind = body["type"]
    assert refusal(body, ACCOUNTS, topic="billing.accounts") == (
        f"invalid {kind}: {kind}.{where}: {IDENTIFIER_RULE}"
    )


@pytest.mark.parametrize("value", ["acme", "a b", "Ünïcødé-账户", "<m1@mta.example>", "x" * 256])
def test_identifiers_may_hold_inner_spaces_and_any_visible_character(value: str) -> None:
    event = accepted({**email(account_id=value, message_id=value), "id": value}, key=value)
    assert (event["id"], event["data"]["account_id"], event["data"]["message_id"]) == (
        value,
        value,
        value,
    )


@pytest.mark.parametrize(
    "timezone",
    [
        "localtime",
        "right/UTC",
        "posix/Europe/Paris",
        "Factory",
        "europe/amsterdam",
        "Europe/Atlantis",
    ],
)
def test_a_time_zone_that_is_not_an_iana_name_is_refused(timezone: str) -> None:
    assert refusal(opened(timezone=timezone), ACCOUNTS, topic="billing.accounts") == (
        "invalid account.opened: account.opened.data.timezone: time zone"
        f" {timezone!r} is not an IANA zone name (names are case-sensitive, e.g. Europe/Amsterdam or UTC)"
    )


@pytest.mark.parametrize("timezone", ["../../etc/passwd", "", "Europe/Amsterdam ", "x" * 65, 1])
def test_a_time_zone_that_cannot_be_a_zone_name_is_refused_by_its_form(timezone: Any) -> None:
    assert refusal(opened(timezone=timezone), ACCOUNTS, topic="billing.accounts") == (
        "invalid account.opened: account.opened.data.timezone:"
        " must be an IANA time zone name, e.g. Europe/Amsterdam"
    )


@pytest.mark.parametrize(
    "timezone",
    ["UTC", "Europe/Amsterdam", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "US/Eastern"],
)
def test_iana_zone_names_and_their_links_are_accepted(timezone: str) -> None:
    event = accepted(opened(timezone=timezone), ACCOUNTS, topic="billing.accounts")
    assert event["data"]["timezone"] == timezone


@pytest.mark.parametrize(
    "time",
    [
        1700000000,  # a Unix time
        "1700000000",
        "2026-11-01T00:00Z",  # no seconds
        "2026-11-01 00:00:00Z",  # RFC 3339's grammar has a T
        "2026-11-01_00:00:00Z",
        "2026-11-01T00:00:00+0100",  # no colon in the offset
        "2026-11-01T00:00:00+01",
        "2026-11-01T00:00:00",  # naive: no offset at all
        "2026-11-01",
        "20261101T000000Z",
        "2026-11-01T00:00:60Z",  # a leap second
        "2026-11-01T00:00:00.1234567891Z",  # beyond nanoseconds
        " 2026-11-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "9999-12-01T00:00:00Z",
        None,
    ],
)
def test_an_event_time_that_is_not_rfc_3339_with_an_offset_is_refused(time: Any) -> None:
    assert refusal({**email(), "time": time}) == f"invalid email.sent: email.sent.time: {TIME_RULE}"


def test_an_impossible_date_is_refused_by_the_calendar() -> None:
    assert refusal({**email(), "time": "2026-02-30T00:00:00Z"}) == (
        "invalid email.sent: email.sent.time: Input should be a valid datetime or date,"
        " day value is outside expected range"
    )


@pytest.mark.parametrize(
    ("time", "instant"),
    [
        ("2026-11-01t00:00:00z", datetime(2026, 11, 1, tzinfo=UTC)),  # RFC 3339 allows lower case
        ("2026-11-01T01:00:00+01:00", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T00:00:00-00:00", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T00:00:00.123456789Z", datetime(2026, 11, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_rfc_3339_times_are_accepted(time: str, instant: datetime) -> None:
    assert accepted({**email(), "time": time})["time"] == instant


def test_an_event_dated_after_the_latest_accepted_time_is_refused() -> None:
    assert refusal({**email(), "time": "2199-01-01T00:00:00Z"}) == (
        "time 2199-01-01T00:00:00+00:00 is in the future: the latest accepted now is"
        " 2026-12-01T00:00:00+00:00 (the ledger's clock plus LEDGER_MAX_FUTURE_SKEW)"
    )
    assert refusal({**email(), "time": "2026-12-01T00:00:00.000001Z"}).startswith(
        "time 2026-12-01T00:00:00.000001+00:00 is in the future"
    )
    assert accepted({**email(), "time": "2026-12-01T00:00:00Z"})["time"] == LATEST


@pytest.mark.parametrize(
    ("time", "refused"),
    [
        # Local dates a day after the bound's, instants before it ...
        ("2026-12-01T13:59:59+14:00", False),  # 2026-11-30T23:59:59Z
        ("2026-12-01T14:00:01+14:00", True),  # 2026-12-01T00:00:01Z
        # ... and local dates before it, instants after it.
        ("2026-11-30T12:00:01-12:00", True),  # 2026-12-01T00:00:01Z
        ("2026-11-30T11:59:59-12:00", False),  # 2026-11-30T23:59:59Z
    ],
)
def test_the_future_bound_compares_instants_not_local_dates(time: str, refused: bool) -> None:
    result = decode(record({**email(), "time": time}), EMAILS, latest_time=LATEST)
    assert isinstance(result, Refused) is refused


@given(
    instant=st.datetimes(
        min_value=datetime(2026, 11, 20), max_value=datetime(2026, 12, 10), timezones=st.just(UTC)
    ),
    offset_minutes=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
    bound=st.datetimes(min_value=datetime(2026, 11, 25), max_value=datetime(2026, 12, 5)),
    bound_offset_minutes=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_an_event_is_refused_as_future_exactly_when_its_instant_is_after_the_bound(
    instant: datetime, offset_minutes: int, bound: datetime, bound_offset_minutes: int
) -> None:
    from datetime import timezone

    local = instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
    latest = bound.replace(tzinfo=timezone(timedelta(minutes=bound_offset_minutes)))
    body = {**email(), "time": local.isoformat()}
    result = decode(record(body), EMAILS, latest_time=latest)
    assert isinstance(result, Refused) is (instant > latest)


@pytest.mark.parametrize(
    "rate",
    [
        0.21,
        0,
        True,
        "0.2_1",
        " 0.21",
        "1",
        "1.0",
        "0.1234567",
        "-0.1",
        "1e-1",
        "\uff10.\uff12",
        ".21",
        None,
    ],
)
def test_a_tax_rate_that_is_not_a_decimal_string_below_one_is_refused(rate: Any) -> None:
    assert refusal(opened(tax_rate=rate), ACCOUNTS, topic="billing.accounts") == (
        f"invalid account.opened: account.opened.data.tax_rate: {TAX_RATE_RULE}"
    )


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("0", Decimal("0")),
        ("0.21", Decimal("0.21")),
        ("0.085", Decimal("0.085")),
        ("0.999999", Decimal("0.999999")),
    ],
)
def test_a_tax_rate_string_is_taken_exactly(rate: str, expected: Decimal) -> None:
    assert (
        accepted(opened(tax_rate=rate), ACCOUNTS, topic="billing.accounts")["data"]["tax_rate"]
        == expected
    )


def test_an_absent_tax_rate_is_zero() -> None:
    assert accepted(opened(), ACCOUNTS, topic="billing.accounts")["data"]["tax_rate"] == Decimal(0)


@pytest.mark.parametrize("currency", ["eur", "XYZ", "EUR ", "EU", "EURO", 978, None])
def test_a_currency_the_ledger_does_not_know_is_refused(currency: Any) -> None:
    assert refusal(opened(currency=currency), ACCOUNTS, topic="billing.accounts") == (
        f"invalid account.opened: account.opened.data.currency: {CURRENCY_RULE}"
    )


@pytest.mark.parametrize("currency", ["EUR", "JPY", "BHD"])
def test_a_known_currency_is_accepted(currency: str) -> None:
    assert (
        accepted(opened(currency=currency), ACCOUNTS, topic="billing.accounts")["data"]["currency"]
        == currency
    )


@pytest.mark.parametrize("version", [1.0, "1", 1, None, "1.0 ", "2.0"])
def test_specversion_is_exactly_the_string_1_0(version: Any) -> None:
    assert refusal({**email(), "specversion": version}) == (
        "invalid email.sent: email.sent.specversion: Input should be '1.0'"
    )


@pytest.mark.parametrize("version", [True, False, 3.0, "3", None, -1, 2**63])
def test_a_contact_version_is_a_json_integer_from_zero(version: Any) -> None:
    reason = refusal(contact(version=version), CONTACTS, topic="billing.contact-changed")
    expected = {
        -1: "Input should be greater than or equal to 0",
        2**63: "Input should be less than or equal to 9223372036854775807",
    }.get(version, "Input should be a valid integer")
    assert reason == f"invalid contact.changed: contact.changed.data.version: {expected}"


def test_a_contact_version_may_be_zero() -> None:
    event = accepted(contact(version=0), CONTACTS, topic="billing.contact-changed")
    assert event["data"]["version"] == 0


@pytest.mark.parametrize("flag", ["yes", "true", 1, 0, "1", None])
@pytest.mark.parametrize("field", ["chat_replied", "web_push"])
def test_contact_flags_are_json_booleans_only(field: str, flag: Any) -> None:
    assert refusal(contact(**{field: flag}), CONTACTS, topic="billing.contact-changed") == (
        f"invalid contact.changed: contact.changed.data.{field}: Input should be a valid boolean"
    )


# ---------------------------------------------------------------- one contract, two readings
# ``decode`` validates into dicts with a schema derived from the models: whatever
# the models accept, it accepts with the same values, and whatever they refuse,
# it refuses (and the reason is the models' own).

SAMPLES = [
    email(),
    email(route="custom_smtp"),
    credit("25.50"),
    {**credit("7"), "data": {"account_id": "acme", "amount": "7", "reference": "inv-1"}},
    opened(),
    opened(tax_rate="0.21", timezone="Europe/Amsterdam", billing_period="quarter"),
    opened(plan="contacts-basic", payment_mode="postpaid", products=["sms", "push"]),
    {**opened(), "type": "account.plan-changed", "data": {"account_id": "acme", "plan": "p"}},
    {**opened(), "type": "account.closed", "data": {"account_id": "acme"}},
    contact(),
    contact(email="a@x", phone=None, user_id="u", chat_replied=True, web_push=False),
    {**contact(), "type": "contact.deleted"},
]
ODD_VALUES: list[Any] = [None, 0, 1, -1, 2.5, True, "", " x", "x", "1.0", [], ["x"], {}, "9" * 300]


def _variants(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The sample, each of its fields (and of its ``data``) left out or given an odd value,
    and ``data`` itself replaced by an odd value."""
    made = [body]
    for name in body:
        made.append({k: v for k, v in body.items() if k != name})
        made.extend({**body, name: odd} for odd in ODD_VALUES)
    for name in body["data"]:
        made.append({**body, "data": {k: v for k, v in body["data"].items() if k != name}})
        made.extend({**body, "data": {**body["data"], name: odd}} for odd in ODD_VALUES)
    return made


@pytest.mark.parametrize("sample", SAMPLES, ids=[f"{s['type']}-{i}" for i, s in enumerate(SAMPLES)])
def test_decoding_accepts_and_converts_exactly_what_the_models_do(sample: dict[str, Any]) -> None:
    from consumers.messages import _validate_fields, _validate_models

    for body in _variants(sample):
        value = json.dumps(body).encode()
        try:
            expected = _validate_models(value).model_dump()
        except ValueError:
            expected = None
        try:
            fields = _validate_fields(value)
        except ValueError:
            fields = None
        assert fields == expected, body


# ---------------------------------------------------------------- payments

PAYMENTS = TOPIC_TYPES["payments"]


def payment(event_type: str = "payment.succeeded", **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "p1",
        "source": "urn:bridge",
        "type": event_type,
        "time": "2026-11-05T10:00:00Z",
        "data": {"account_id": "acme", "amount": "12.10", "currency": "EUR", **data},
    }


def test_a_payment_maps_to_receive_payment_named_by_its_dedupe_key() -> None:
    body = payment(reference="2026-000001", request_id="PF-acme-0001/attempt-1")
    result = decode(record(body, topic="billing.payments"), PAYMENTS, latest_time=LATEST)
    assert isinstance(result, Accepted)
    [command] = to_commands([result])
    assert isinstance(command, ReceivePayment)
    assert (command.payment_id, command.amount, command.currency) == (
        "urn:bridge p1",
        Decimal("12.10"),
        "EUR",
    )
    assert (command.reference, command.request_id) == ("2026-000001", "PF-acme-0001/attempt-1")
    assert command.origin is not None and command.origin.dedupe_key == ("urn:bridge", "p1")


def test_a_payment_without_reference_is_accepted_and_a_failure_defaults_to_retryable() -> None:
    plain = decode(record(payment(), topic="billing.payments"), PAYMENTS, latest_time=LATEST)
    assert isinstance(plain, Accepted)
    [received] = to_commands([plain])
    assert isinstance(received, ReceivePayment) and received.reference is None
    body = payment("payment.failed", reference="2026-000001", reason="insufficient funds")
    failed = decode(record(body, topic="billing.payments"), PAYMENTS, latest_time=LATEST)
    assert isinstance(failed, Accepted)
    [command] = to_commands([failed])
    assert isinstance(command, RecordPaymentFailure)
    assert (command.reason, command.retryable) == ("insufficient funds", True)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (payment(amount=12.1), "invalid payment.succeeded: payment.succeeded.data.amount: "),
        (payment(currency="XYZ"), "invalid payment.succeeded: payment.succeeded.data.currency: "),
        (payment("payment.failed"), "invalid payment.failed: payment.failed.data.reason: Field"),
        (
            payment("payment.failed", reason="no", retryable="false"),
            "invalid payment.failed: payment.failed.data.retryable: Input should be a valid bool",
        ),
    ],
)
def test_bad_payments_are_refused_with_the_field(body: dict[str, Any], reason: str) -> None:
    result = decode(record(body, topic="billing.payments"), PAYMENTS, latest_time=LATEST)
    assert isinstance(result, Refused)
    assert result.reason.startswith(reason), result.reason


def test_a_payment_on_the_accounts_topic_is_refused() -> None:
    result = decode(record(payment(), topic="billing.accounts"), ACCOUNTS, latest_time=LATEST)
    assert isinstance(result, Refused)
    assert "does not belong on topic 'billing.accounts'" in result.reason
