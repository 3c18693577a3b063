"""How the ledger's value objects are stored: plain JSON, readable by an auditor."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding
from pydantic import BaseModel

from ledger.application.flat_values import (
    AllocationAsList,
    ChargeAsList,
    ContactChangeAsList,
    CreditAsList,
    EmailPlanAsList,
    MoneyAsPair,
    MonthStandingAsList,
    ReceivableAsList,
    UsageEntryAsList,
    month,
)
from ledger.contacts.proformas import OpenProforma
from ledger.contacts.renewal import RenewalPeriod
from ledger.contacts.subscriptions import AllowanceMonth, Subscription
from ledger.documents import Document, Line
from ledger.emails.pricing import Charge
from ledger.emails.usage import (
    ClosedMonth,
    LateUsage,
    MonthUsage,
    Segment,
    UsageEntry,
    WholeUsage,
)
from ledger.money import Money
from ledger.payments.dunning import Transition
from ledger.payments.notices import Notice, NoticeChange
from ledger.payments.schedule import Collection
from ledger.periods import Month
from ledger.plans import ContactsPlan, ContactTier, EmailPlan, Tier


class MoneyAsDict(Transcoding):
    """How money was stored before
    :class:`ledger.application.flat_values.MoneyAsPair`: still read."""

    type = Money
    name = "money"

    def encode(self, obj: Money) -> dict[str, str]:
        return {"amount": str(obj.amount), "currency": obj.currency}

    def decode(self, data: dict[str, str]) -> Money:
        # Checked when it was made (Money.of): a stored amount is read as written.
        return Money(Decimal(data["amount"]), data["currency"])


class LedgerTranscoder(JSONTranscoder):
    """The library's JSON transcoder with a faster object hook.

    The decoder calls the hook for every JSON object of every stored event (a
    dozen in a usage event), and the library's raises and catches a ``KeyError``
    for each one that is not an encoded value (a money amount's fields, a
    document's). This one looks the name up instead, and hands anything it does
    not know to the library's hook, so errors read as the library's
    (docs/library-touches.md, touch 15).
    """

    def __init__(self) -> None:
        super().__init__()
        self._decoders: dict[str, Callable[[Any], Any]] = {}

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        self._decoders[transcoding.name] = transcoding.decode

    def _decode_obj(self, d: dict[str, Any]) -> Any:
        if len(d) != 2:
            return d
        name = d.get("_type_")
        if name is None:
            return d
        decode = self._decoders.get(name)
        if decode is None or "_data_" not in d:
            return super()._decode_obj(d)
        return decode(d["_data_"])


class MonthAsStr(Transcoding):
    type = Month
    name = "month"

    def encode(self, obj: Month) -> str:
        return str(obj)

    def decode(self, data: str) -> Month:
        return month(data)


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class DataclassAsDict(Transcoding):
    """A frozen dataclass as its fields; JSON lists come back as the tuples they were."""

    def __init__(self, cls: type[Any]) -> None:
        self.type = cls
        self.name = cls.__name__
        self.fields = [f.name for f in dataclasses.fields(cls)]

    def encode(self, obj: Any) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in self.fields}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class ModelAsDict(Transcoding):
    """A frozen pydantic model (plan terms) as its fields, re-validated on the way back.

    Every usage event carries the plan its emails were priced with, often
    twice (the month's fee and its segment): the encoded form of a plan object
    is computed once and reused, already expanded (its tiers and decimals), so
    the JSON encoder does not call back into Python for each of its parts. The
    bytes written are the same. The expansion is the transcoder's own output
    read back (``json.loads``): the library's encoding rules, applied by the
    library, rather than a copy of its private ``_encode_obj``.
    """

    CACHE_SIZE = 1024

    def __init__(self, cls: type[BaseModel], transcoder: JSONTranscoder | None = None) -> None:
        self.type = cls
        self.name = cls.__name__
        self.model = cls
        self.transcoder = transcoder
        # id(obj) -> (obj, encoded): the object is held, so its id is not reused.
        self._encoded: dict[int, tuple[BaseModel, dict[str, Any]]] = {}
        self._decoded: dict[Any, BaseModel] = {}

    def encode(self, obj: BaseModel) -> dict[str, Any]:
        cached = self._encoded.get(id(obj))
        if cached is not None and cached[0] is obj:
            return cached[1]
        data = {name: getattr(obj, name) for name in type(obj).model_fields}
        if self.transcoder is None:
            return data
        expanded: dict[str, Any] = json.loads(self.transcoder.encode(data))
        if len(self._encoded) >= self.CACHE_SIZE:
            self._encoded.clear()
        self._encoded[id(obj)] = (obj, expanded)
        return expanded

    def decode(self, data: dict[str, Any]) -> BaseModel:
        # The same terms come back in every usage event (replays, the read models'
        # pass): a frozen model of the same fields is the same value, so it is
        # validated once and shared. Fields that cannot be a key (a contacts plan's
        # dicts) are validated each time.
        try:
            key = (tuple(data), tuple([_field_key(value) for value in data.values()]))
            decoded = self._decoded.get(key)
        except TypeError:
            return self.model.model_validate(data)
        if decoded is None:
            decoded = self.model.model_validate(data)
            if len(self._decoded) >= self.CACHE_SIZE:
                self._decoded.clear()
            self._decoded[key] = decoded
        return decoded


def _field_key(value: Any) -> Any:
    """Tells apart what equality does not: ``Decimal("0.0010")`` and ``Decimal("0.001")``
    are equal, but are stored (and must come back) as written. A list holds nested
    models, decoded (so shared) already: keyed by identity, which cannot be reused
    while the cached model holds them."""
    kind = type(value)
    if kind is Decimal:
        return str(value)
    if kind is list:
        return tuple([id(item) for item in value])
    return value


DATACLASSES = (
    Charge,
    Segment,
    MonthUsage,
    ClosedMonth,
    LateUsage,
    UsageEntry,
    WholeUsage,
    Line,
    Document,
    RenewalPeriod,
    Subscription,
    AllowanceMonth,
    OpenProforma,
    # Collections, dunning and notices (DunningChanged): rare, so as readable dicts.
    Collection,
    Transition,
    Notice,
    NoticeChange,
)
MODELS = (EmailPlan, Tier, ContactsPlan, ContactTier)


def register_ledger_transcodings(transcoder: JSONTranscoder) -> None:
    transcoder.register(MoneyAsDict())
    transcoder.register(MoneyAsPair())  # encodes money from now on
    transcoder.register(MonthAsStr())
    transcoder.register(DateAsISO())
    transcoder.register(ContactChangeAsList())
    for cls in DATACLASSES:
        transcoder.register(DataclassAsDict(cls))
    # After the dataclasses: these encode their types; the objects stored before decode.
    for flat in (ChargeAsList(), UsageEntryAsList(), MonthStandingAsList()):
        transcoder.register(flat)
    for payments in (ReceivableAsList(), CreditAsList(), AllocationAsList()):
        transcoder.register(payments)
    for model in MODELS:
        transcoder.register(ModelAsDict(model, transcoder))
    transcoder.register(EmailPlanAsList())  # encodes email plans from now on
