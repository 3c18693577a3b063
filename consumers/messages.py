"""The input contract: CloudEvents 1.0, structured JSON mode, Kafka key = account id.

``decode`` is a pure function of one Kafka record: it returns the validated
event or the reason it was refused. Extra fields are tolerated; a missing or
mistyped required field is refused with the field's path in the reason.
JSON Schemas under ``schemas/`` are generated from these models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple, Protocol

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
)


def _amount_as_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError('amounts are strings, e.g. "25.00" (a JSON number may already be inexact)')
    return value


def _rate(value: Any) -> Any:
    if isinstance(value, float):
        return str(value)  # a tax rate such as 0.21 as a JSON number is tolerated
    return value


def _plausible_time(value: datetime) -> datetime:
    # A year 9999 event would make month arithmetic overflow at every later close.
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"time must be between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


EARLIEST_YEAR, LATEST_YEAR = 1970, 2200

#: Bounded so that no accepted amount can overflow the decimal context.
Amount = Annotated[
    Decimal, BeforeValidator(_amount_as_string), Field(max_digits=20, decimal_places=8)
]
NonEmpty = Annotated[str, Field(min_length=1, max_length=1024)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


#: An identifier the ledger keys by: something must be left after stripping whitespace.
NonBlank = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_not_blank)]
EventTime = Annotated[AwareDatetime, AfterValidator(_plausible_time)]


#: Extra fields are tolerated and not kept: the ledger reads only the contract's
#: fields, and keeping the rest costs ~20% of the validation of an email. The
#: published schemas still say that extra fields are allowed.
TOLERANT = ConfigDict(extra="ignore", frozen=True, json_schema_extra={"additionalProperties": True})


class Data(BaseModel):
    model_config = TOLERANT

    account_id: NonEmpty


class EmailSent(Data):
    message_id: NonEmpty
    route: Literal["platform", "custom_smtp"]


BillingPeriod = Literal["month", "quarter", "half_year", "year"]
#: Products (add-ons) chosen with a contacts plan.
Products = Annotated[list[NonEmpty], Field(max_length=50)]


class AccountOpened(Data):
    plan: NonEmpty
    payment_mode: Literal["prepaid", "postpaid"]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    billing_period: BillingPeriod = "month"
    tax_rate: Annotated[Decimal, BeforeValidator(_rate), Field(ge=0, lt=1)] = Decimal(0)
    timezone: NonEmpty = "UTC"
    products: Products = []


class CreditPurchased(Data):
    amount: Amount
    reference: str | None = None


class PlanChanged(Data):
    """For a contacts plan, ``products`` / ``billing_period`` left out keep the current choice."""

    plan: NonEmpty
    products: Products | None = None
    billing_period: BillingPeriod | None = None


#: Contact identifiers: a string, or null / absent for "none".
Identifier = Annotated[str | None, Field(max_length=1024)]


class ContactChanged(Data):
    """A contact as upstream now describes it; billable when any identifier is present."""

    contact_id: NonBlank
    version: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
    email: Identifier = None
    phone: Identifier = None
    user_id: Identifier = None
    chat_replied: StrictBool = False
    web_push: StrictBool = False


class ContactDeleted(Data):
    contact_id: NonBlank
    version: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]


class AccountClosed(Data):
    pass


class Envelope(BaseModel):
    model_config = TOLERANT

    specversion: Literal["1.0"]
    id: NonEmpty
    source: NonEmpty
    time: EventTime


class EmailSentEvent(Envelope):
    type: Literal["email.sent"]
    data: EmailSent


class AccountOpenedEvent(Envelope):
    type: Literal["account.opened"]
    data: AccountOpened


class CreditPurchasedEvent(Envelope):
    type: Literal["account.credit-purchased"]
    data: CreditPurchased


class PlanChangedEvent(Envelope):
    type: Literal["account.plan-changed"]
    data: PlanChanged


class AccountClosedEvent(Envelope):
    type: Literal["account.closed"]
    data: AccountClosed


class ContactChangedEvent(Envelope):
    type: Literal["contact.changed"]
    data: ContactChanged


class ContactDeletedEvent(Envelope):
    type: Literal["contact.deleted"]
    data: ContactDeleted


InputEvent = Annotated[
    EmailSentEvent
    | AccountOpenedEvent
    | CreditPurchasedEvent
    | PlanChangedEvent
    | AccountClosedEvent
    | ContactChangedEvent
    | ContactDeletedEvent,
    Field(discriminator="type"),
]
INPUT_EVENTS: dict[str, type[Envelope]] = {
    "email.sent": EmailSentEvent,
    "account.opened": AccountOpenedEvent,
    "account.credit-purchased": CreditPurchasedEvent,
    "account.plan-changed": PlanChangedEvent,
    "account.closed": AccountClosedEvent,
    "contact.changed": ContactChangedEvent,
    "contact.deleted": ContactDeletedEvent,
}
_INPUT = TypeAdapter[Any](InputEvent)

#: Which event types each kind of topic carries (keys are the setting names).
TOPIC_TYPES: dict[str, frozenset[str]] = {
    "email_sent": frozenset({"email.sent"}),
    "accounts": frozenset(
        {"account.opened", "account.credit-purchased", "account.plan-changed", "account.closed"}
    ),
    "contact_changed": frozenset({"contact.changed", "contact.deleted"}),
}


@dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record as the consumer hands it over: coordinates, key and bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


class RecordLike(Protocol):
    """A :class:`Record`, or kafka-python's own ``ConsumerRecord`` (same names),
    which the consumer hands over as polled instead of copying each one."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes: ...


class Accepted(NamedTuple):
    """A record that passed the contract (a named tuple: one is built per record)."""

    record: RecordLike
    event: Any  # one of the *Event models above

    @property
    def dedupe_key(self) -> tuple[str, str]:
        return (self.event.source, self.event.id)


@dataclass(frozen=True, slots=True)
class Refused:
    record: RecordLike
    reason: str


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    parts = []
    for error in errors[:3]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


#: pydantic-core's validator itself: ``TypeAdapter.validate_json`` adds ~10% per record in Python.
_validate_json = _INPUT.validator.validate_json


def decode(record: RecordLike, accepted_types: frozenset[str]) -> Accepted | Refused:
    """Validate one record against the contract; never raises.

    One pass in pydantic-core (parse + validate, discriminated on ``type``);
    the slower path that explains a refusal runs only for refused records.
    """
    if not record.value:  # a tombstone or empty message: nothing to validate
        return Refused(record, "empty message: no CloudEvent in the record value")
    if b"\\u0000" in record.value:  # one scan of the bytes, cheaper than a pattern per field
        return Refused(record, "NUL characters (\\u0000) are not accepted in a CloudEvent")
    try:
        event = _validate_json(record.value)
    except ValidationError as exc:
        return Refused(record, _refusal(record, exc))
    if event.type not in accepted_types:
        return Refused(
            record, f"event type {event.type!r} does not belong on topic {record.topic!r}"
        )
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    if key != event.data.account_id:
        return Refused(record, f"Kafka key {key!r} is not the account id {event.data.account_id!r}")
    return Accepted(record, event)


def _refusal(record: RecordLike, exc: ValidationError) -> str:
    """Why pydantic refused a record; must never raise, whatever the bytes."""
    try:
        raw = json.loads(record.value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"not JSON: {error}"
    except (RecursionError, ValueError, TypeError):
        return "not JSON: undecodable value"
    if not isinstance(raw, dict):
        return "not a CloudEvent: the message is not a JSON object"
    event_type = raw.get("type")
    if not isinstance(event_type, str) or event_type not in INPUT_EVENTS:
        return f"unknown event type {str(event_type)[:100]!r}"
    return f"invalid {event_type}: {_first_error(exc)}"
