"""The input contract: CloudEvents 1.0, structured JSON mode, Kafka key = account id.

``decode`` is a pure function of one Kafka record and the latest event time
accepted: it returns the validated event or the reason it was refused. Each
field has one exact form (``consumers/contract.py``); extra fields are
tolerated; a missing, mistyped or malformed field is refused with the field's
path and its form in the reason. JSON Schemas under ``schemas/`` are
generated from these models.

The models are the contract; what ``decode`` hands over is their fields as
plain dicts (:data:`Fields`), validated by the models' own field schemas
(:func:`fields_schema`). A model instance per record and per ``data`` cost
~40% of a record's validation, and as much again to free: the consumer reads
each field once, so an object with attribute access bought it nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter, ValidationError
from pydantic_core import SchemaValidator, core_schema

from consumers.contract import (
    Amount,
    Currency,
    EventTime,
    Identifier,
    TaxRate,
    TimeZone,
    Version,
)

#: Extra fields are tolerated and not kept: the ledger reads only the contract's
#: fields, and keeping the rest costs ~20% of the validation of an email. The
#: published schemas still say that extra fields are allowed.
TOLERANT = ConfigDict(extra="ignore", frozen=True, json_schema_extra={"additionalProperties": True})


class Data(BaseModel):
    model_config = TOLERANT

    account_id: Identifier


class EmailSent(Data):
    message_id: Identifier
    route: Literal["platform", "custom_smtp"]


BillingPeriod = Literal["month", "quarter", "half_year", "year"]
#: Products (add-ons) chosen with a contacts plan.
Products = Annotated[list[Identifier], Field(max_length=50)]


class AccountOpened(Data):
    plan: Identifier
    payment_mode: Literal["prepaid", "postpaid"]
    currency: Currency
    billing_period: BillingPeriod = "month"
    tax_rate: TaxRate = Decimal(0)
    timezone: TimeZone = "UTC"
    products: Products = []


class CreditPurchased(Data):
    amount: Amount
    reference: Identifier | None = None


class PlanChanged(Data):
    """For a contacts plan, ``products`` / ``billing_period`` left out keep the current choice."""

    plan: Identifier
    products: Products | None = None
    billing_period: BillingPeriod | None = None


#: What makes a contact billable: a string, or null / absent for "none". Only
#: whether each is present (non-blank) is used and stored, never the value.
ContactDetail = Annotated[str | None, Field(max_length=1024)]


class ContactChanged(Data):
    """A contact as upstream now describes it; billable when any identifier is present."""

    contact_id: Identifier
    version: Version
    email: ContactDetail = None
    phone: ContactDetail = None
    user_id: ContactDetail = None
    chat_replied: StrictBool = False
    web_push: StrictBool = False


class ContactDeleted(Data):
    contact_id: Identifier
    version: Version


class AccountClosed(Data):
    pass


#: Why the payment bridge could not collect: its own words, shown on the notice.
FailureReason = Annotated[str, Field(min_length=1, max_length=1024)]


class PaymentSucceeded(Data):
    """Money received. ``amount`` follows ``account.credit-purchased``'s rule (> 0,
    in the currency's minor units: checked where the currency is known).
    ``reference`` names the invoice or proforma paid; unknown or absent, the money
    is held as the account's unapplied credit, never dropped."""

    amount: Amount
    currency: Currency
    reference: Identifier | None = None
    request_id: Identifier | None = None


class PaymentFailed(PaymentSucceeded):
    """A collection attempt that failed; ``retryable: false`` is a hard decline."""

    reason: FailureReason
    retryable: StrictBool = True


class Envelope(BaseModel):
    model_config = TOLERANT

    specversion: Literal["1.0"]
    id: Identifier
    source: Identifier
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


class PaymentSucceededEvent(Envelope):
    type: Literal["payment.succeeded"]
    data: PaymentSucceeded


class PaymentFailedEvent(Envelope):
    type: Literal["payment.failed"]
    data: PaymentFailed


InputEvent = Annotated[
    EmailSentEvent
    | AccountOpenedEvent
    | CreditPurchasedEvent
    | PlanChangedEvent
    | AccountClosedEvent
    | ContactChangedEvent
    | ContactDeletedEvent
    | PaymentSucceededEvent
    | PaymentFailedEvent,
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
    "payment.succeeded": PaymentSucceededEvent,
    "payment.failed": PaymentFailedEvent,
}
_INPUT = TypeAdapter[Any](InputEvent)

#: A validated event: the fields of its ``*Event`` model, ``data`` those of its
#: ``data`` model, each converted as the model converts it (``time`` a datetime,
#: ``amount`` a Decimal, defaults filled in), extra fields left out.
Fields = dict[str, Any]


def fields_schema(schema: Any) -> Any:
    """A core schema (or any part of one) with every model replaced by a typed dict
    over that model's own field schemas: the same rules, the same conversions and
    defaults, the same error locations, and a dict out instead of a model instance.

    Derived, not written again, so the models stay the one statement of the
    contract (tests/unit/test_messages.py holds both readings equal).
    """
    if isinstance(schema, list):
        return [fields_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "model":
        fields = schema["schema"]
        if fields["type"] != "model-fields" or fields.get("computed_fields"):
            raise TypeError(f"not a plain model: {schema.get('ref')}")
        config = schema.get("config", {})
        return core_schema.typed_dict_schema(
            {
                name: core_schema.typed_dict_field(
                    fields_schema(field["schema"]),
                    required=field["schema"]["type"] != "default",
                    validation_alias=field.get("validation_alias"),
                )
                for name, field in fields["fields"].items()
            },
            extra_behavior=config.get("extra_fields_behavior", "ignore"),
            ref=schema.get("ref"),
        )
    return {key: fields_schema(value) for key, value in schema.items()}


#: Which event types each kind of topic carries (keys are the setting names).
TOPIC_TYPES: dict[str, frozenset[str]] = {
    "email_sent": frozenset({"email.sent"}),
    "accounts": frozenset(
        {"account.opened", "account.credit-purchased", "account.plan-changed", "account.closed"}
    ),
    "contact_changed": frozenset({"contact.changed", "contact.deleted"}),
    "payments": frozenset({"payment.succeeded", "payment.failed"}),
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
    event: Fields

    @property
    def dedupe_key(self) -> tuple[str, str]:
        return (self.event["source"], self.event["id"])


#: A named tuple built by ``tuple.__new__``, without the Python frame of its generated
#: ``__new__`` (~150 ns of ~280 ns): the hot path builds three per email (``Accepted``,
#: and in ``consumers/mapping.py`` its ``Origin`` and ``SentEmailItem``). Every field
#: must be given, in order: the defaults are the generated ``__new__``'s.
new_tuple = tuple.__new__


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


#: pydantic-core's validator itself: ``TypeAdapter.validate_json`` adds ~10% per record in Python
#: (a library touch: docs/library-touches.md). The models' reading says why a record
#: was refused (the reasons name the models' errors); the fields' reading is the hot path.
_validate_models = _INPUT.validator.validate_json
#: Strings are not cached: the keys are few, but almost every value (ids, times) is
#: new, so caching them costs a lookup and a slot each for nothing (~15% of a record).
_validate_fields = SchemaValidator(
    fields_schema(_INPUT.core_schema), {"cache_strings": "keys"}
).validate_json


def decode(
    record: RecordLike, accepted_types: frozenset[str], *, latest_time: datetime
) -> Accepted | Refused:
    """Validate one record against the contract; never raises.

    ``latest_time`` is the latest event time accepted: the consumer's clock
    plus the allowed skew, read once per batch, so that decoding stays a pure
    function of its arguments. An event dated later would move its account's
    business time (and its batch's) into the future.

    One pass in pydantic-core (parse + validate, discriminated on ``type``);
    the slower path that explains a refusal runs only for refused records.
    """
    if not record.value:  # a tombstone or empty message: nothing to validate
        return Refused(record, "empty message: no CloudEvent in the record value")
    if b"\\u0000" in record.value:  # one scan of the bytes, cheaper than a pattern per field
        return Refused(record, "NUL characters (\\u0000) are not accepted in a CloudEvent")
    try:
        event = _validate_fields(record.value)
    except ValidationError as exc:
        return Refused(record, _refusal(record, exc))
    event_type = event["type"]
    if event_type not in accepted_types:
        return Refused(
            record, f"event type {event_type!r} does not belong on topic {record.topic!r}"
        )
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    account_id = event["data"]["account_id"]
    if key != account_id:
        return Refused(record, f"Kafka key {key!r} is not the account id {account_id!r}")
    # A full comparison converts both UTC offsets (~0.5 us, a tenth of a decode);
    # a local date is within a day of the UTC date, so only an event dated
    # within three days of the bound needs one.
    time = event["time"]
    if time.toordinal() > latest_time.toordinal() - 3 and time > latest_time:
        return Refused(
            record,
            f"time {time.isoformat()} is in the future: the latest accepted now is"
            f" {latest_time.isoformat()} (the ledger's clock plus LEDGER_MAX_FUTURE_SKEW)",
        )
    return new_tuple(Accepted, (record, event))


def _refusal(record: RecordLike, exc: ValidationError) -> str:
    """Why pydantic refused a record; must never raise, whatever the bytes.

    The models' own errors, read again (refusals are rare): a typed dict words a
    few of them differently ("a valid dictionary", not "... or instance of
    EmailSent"). ``exc`` is the fields' reading, kept if the models accepted.
    """
    try:
        _validate_models(record.value)
    except ValidationError as models_exc:
        exc = models_exc
    value = record.value or b""
    try:
        value.decode("utf-8")  # json.loads would guess UTF-16 from the first bytes
    except UnicodeDecodeError as error:
        bad = value[error.start : error.start + 1]
        return f"not UTF-8: byte {error.start} ({bad!r}) {error.reason}"
    try:
        raw = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"not JSON: {error}"
    except (RecursionError, ValueError, TypeError):
        return "not JSON: undecodable value"
    if not isinstance(raw, dict):
        return "not a CloudEvent: the message is not a JSON object"
    event_type = raw.get("type")
    if event_type is None:
        return "invalid CloudEvent: type: Field required"
    if not isinstance(event_type, str) or event_type not in INPUT_EVENTS:
        return f"unknown event type {str(event_type)[:100]!r}"
    return f"invalid {event_type}: {_first_error(exc)}"
