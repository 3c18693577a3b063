"""The field rules of the input contract: one type per kind of field, each strict.

Python's own parsers are lenient where a ledger must not be: ``Decimal`` reads
``"1_000"``, ``" 7 "``, fullwidth and Arabic-Indic digits; pydantic's datetime
reads ``"1700000000"`` and ``"2026-11-01T00:00Z"``; ``ZoneInfo`` reads any file
of the host's zoneinfo folder (``localtime`` follows the host's clock). Each
field is therefore checked against the exact form the contract allows before
it is converted, and refused with a sentence saying what that form is
(``docs/input-contract.md`` lists every rule and the test that proves it).

Cost: ``decode`` validates every record in pydantic-core, and the checks on
the per-email fields (identifiers, time) stay there: a pattern is a Rust
regex, and :class:`Text` chains it to the conversion in the core schema, so
no Python runs per record. The one Python validator is the time zone's
(an ``account.opened`` field: rare), which asks the domain's own rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictInt,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from ledger.money import MINOR_UNITS
from ledger.periods import InvalidTimezone, check_timezone


@dataclass(frozen=True)
class Text:
    """A field given as a JSON string of an exact form, then converted to its type.

    Anything else (another JSON type, a string of another form) is refused with
    ``explains`` as the reason, stated in the JSON Schema as the description.
    """

    pattern: str
    explains: str
    max_length: int | None = None
    json_format: str | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        text = core_schema.custom_error_schema(
            core_schema.str_schema(pattern=self.pattern, max_length=self.max_length, strict=True),
            custom_error_type="contract_form",
            custom_error_message=self.explains,
        )
        if source is str:
            return text
        return core_schema.chain_schema([text, handler(source)])

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        document = handler(schema)
        document["description"] = self.explains
        if self.json_format:
            document["format"] = self.json_format
        return document


#: Never in an identifier: control characters (C0, DEL, C1) and the invisible
#: format characters that make two different ids look alike (zero-width spaces
#: and joiners, bidirectional controls, the byte order mark).
_HIDDEN = r"\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
#: Upstream keys are UUIDs, URNs, RFC 5322 Message-IDs: well under this. Every
#: email stores its source, id and message id in ``ledger_dedupe``.
MAX_IDENTIFIER = 256
IDENTIFIER_PATTERN = rf"^[^\s{_HIDDEN}]([^{_HIDDEN}]*[^\s{_HIDDEN}])?$"

#: Account, contact, message and plan ids, CloudEvent ``id`` and ``source``:
#: what the ledger keys, dedupes and traces by, so " acme" is not "acme".
Identifier = Annotated[
    str,
    Text(
        IDENTIFIER_PATTERN,
        f"must be a string of 1 to {MAX_IDENTIFIER} characters without leading or trailing"
        " whitespace and without control or invisible characters",
        max_length=MAX_IDENTIFIER,
    ),
]

#: The most decimal places of any currency the ledger knows (BHD, KWD: 3).
MAX_MINOR_UNITS = max(MINOR_UNITS.values())
AMOUNT_PATTERN = rf"^(0|[1-9][0-9]{{0,11}})(\.[0-9]{{1,{MAX_MINOR_UNITS}}})?$"

#: Money that moves (a credit; later payments). Checked here for its form;
#: the account's currency decides how many of those places it may have
#: (``ledger.money.check_minor_units``, where the currency is known).
Amount = Annotated[
    Decimal,
    Text(
        AMOUNT_PATTERN,
        "must be a JSON string of ASCII digits, with an optional fractional part of at most"
        f' {MAX_MINOR_UNITS} digits, e.g. "25.00" (no sign, exponent, separator or space;'
        " a JSON number may already be inexact)",
    ),
]

TAX_RATE_PATTERN = r"^0(\.[0-9]{1,6})?$"
TaxRate = Annotated[
    Decimal,
    Text(
        TAX_RATE_PATTERN,
        "must be a JSON string of a fraction from 0 to below 1 with at most 6 decimal places,"
        ' e.g. "0.21" for 21%',
    ),
]

_KNOWN = sorted(MINOR_UNITS)
#: ISO 4217 codes, and only those whose minor unit the ledger knows.
Currency = Annotated[
    str,
    Text(
        rf"^({'|'.join(_KNOWN)})$",
        f"must be an ISO 4217 currency code the ledger knows: {', '.join(_KNOWN)}",
    ),
]


def _iana_zone(name: str) -> str:
    try:
        return check_timezone(name)
    except InvalidTimezone as exc:  # the domain's own sentence, without "Value error, "
        raise PydanticCustomError("time_zone", str(exc)) from None


#: The ledger's one rule for zone names (``ledger.periods.check_timezone``).
TimeZone = Annotated[
    str,
    Text(r"^[A-Za-z0-9_+/-]{1,64}$", "must be an IANA time zone name, e.g. Europe/Amsterdam"),
    AfterValidator(_iana_zone),
]

#: RFC 3339 ``date-time``: seconds required, an offset required (``Z`` or
#: ``+hh:mm``; a time without one is ambiguous), ``T``/``Z`` in either case as
#: RFC 3339 allows; no leap second (Python cannot hold one); at most nanoseconds
#: (kept to the microsecond). Years from 1970: the upper bound is the clock
#: (``decode``'s ``latest_time``), and the pattern keeps any year 9999 out.
_DATE = r"(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_CLOCK = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
_OFFSET = r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
TIME_PATTERN = rf"^{_DATE}[Tt]{_CLOCK}{_OFFSET}$"
EventTime = Annotated[
    AwareDatetime,
    Text(
        TIME_PATTERN,
        "must be an RFC 3339 time with seconds and a UTC offset, from 1970 on,"
        " e.g. 2026-11-30T23:59:59.999+01:00",
        json_format="date-time",
    ),
]

#: A per-contact version: a JSON integer (not true, 3.0 or "3"), from 0 (upstream
#: row versions often start there) to PostgreSQL's bigint.
Version = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
