"""How the ledger's value objects are stored: plain JSON, readable by an auditor."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding
from pydantic import BaseModel

from ledger.account import SentEmail, UsageEntry
from ledger.documents import Document, Line
from ledger.money import Money
from ledger.periods import Month
from ledger.plans import EmailPlan, Tier
from ledger.pricing import Charge
from ledger.usage import ClosedMonth, LateUsage, MonthUsage, Segment


class MoneyAsDict(Transcoding):
    type = Money
    name = "money"

    def encode(self, obj: Money) -> dict[str, str]:
        return {"amount": str(obj.amount), "currency": obj.currency}

    def decode(self, data: dict[str, str]) -> Money:
        return Money.of(data["amount"], data["currency"])


class MonthAsStr(Transcoding):
    type = Month
    name = "month"

    def encode(self, obj: Month) -> str:
        return str(obj)

    def decode(self, data: str) -> Month:
        return Month.parse(data)


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
    """A frozen pydantic model (plan terms) as its fields, re-validated on the way back."""

    def __init__(self, cls: type[BaseModel]) -> None:
        self.type = cls
        self.name = cls.__name__
        self.model = cls

    def encode(self, obj: BaseModel) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in type(obj).model_fields}

    def decode(self, data: dict[str, Any]) -> BaseModel:
        return self.model.model_validate(data)


DATACLASSES = (Charge, Segment, MonthUsage, ClosedMonth, LateUsage, UsageEntry, Line, Document, SentEmail)
MODELS = (EmailPlan, Tier)


def register_ledger_transcodings(transcoder: JSONTranscoder) -> None:
    transcoder.register(MoneyAsDict())
    transcoder.register(MonthAsStr())
    transcoder.register(DateAsISO())
    for cls in DATACLASSES:
        transcoder.register(DataclassAsDict(cls))
    for model in MODELS:
        transcoder.register(ModelAsDict(model))
