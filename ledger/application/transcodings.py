"""How the ledger's value objects are stored: plain JSON, readable by an auditor."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding
from pydantic import BaseModel

from ledger.contacts.billable import ContactChange
from ledger.contacts.proformas import OpenProforma
from ledger.contacts.renewal import RenewalPeriod
from ledger.contacts.subscriptions import AllowanceMonth, Subscription
from ledger.documents import Document, Line
from ledger.emails.pricing import Charge
from ledger.emails.usage import (
    ClosedMonth,
    LateUsage,
    MonthStanding,
    MonthUsage,
    Segment,
    UsageEntry,
    WholeUsage,
)
from ledger.money import Money
from ledger.payments.allocation import Allocation, Credit
from ledger.payments.receivables import Receivable
from ledger.periods import Month
from ledger.plans import ContactsPlan, ContactTier, EmailPlan, Tier


class MoneyAsDict(Transcoding):
    """How money was stored before :class:`MoneyAsPair`: still read."""

    type = Money
    name = "money"

    def encode(self, obj: Money) -> dict[str, str]:
        return {"amount": str(obj.amount), "currency": obj.currency}

    def decode(self, data: dict[str, str]) -> Money:
        # Checked when it was made (Money.of): a stored amount is read as written.
        return Money(Decimal(data["amount"]), data["currency"])


class MoneyAsPair(Transcoding):
    """Money as ``["11.2940", "EUR"]``: one JSON object for the decoder to call back
    on instead of two (a document carries a dozen amounts)."""

    type = Money
    name = "amount_currency"

    def encode(self, obj: Money) -> list[str]:
        return [str(obj.amount), obj.currency]

    def decode(self, data: list[str]) -> Money:
        amount, currency = data
        return Money(Decimal(amount), currency)


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


@functools.lru_cache(maxsize=4096)
def month(text: str) -> Month:
    """A stored month, parsed once: a month is a value, and every usage event names one."""
    return Month.parse(text)


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


class ContactChangeAsList(Transcoding):
    """A contact change as ``[contact_id, version, changed_at, reasons, deleted]``,
    plus ``counted_from`` when the change was reported late.

    An event carries every change of a batch (thousands): one flat list each
    keeps the stored event small and its encoding free of nested callbacks.
    """

    type = ContactChange
    name = "contact_change"

    def encode(self, obj: ContactChange) -> list[Any]:
        data = [obj.contact_id, obj.version, obj.changed_at.isoformat(), obj.reasons, obj.deleted]
        if obj.counted_from is not None:
            data.append(obj.counted_from.isoformat())
        return data

    def decode(self, data: list[Any]) -> ContactChange:
        contact_id, version, changed_at, reasons, deleted, *late = data
        return ContactChange(
            contact_id,
            version,
            datetime.fromisoformat(changed_at),
            tuple(reasons),
            deleted,
            datetime.fromisoformat(late[0]) if late else None,
        )


class ChargeAsList(Transcoding):
    """A charge as ``[plan_id, tier, unit_price, count]``.

    Every usage event carries a few (what its emails were charged, what the
    month costs so far): flat, each is one decoding callback instead of three,
    and a tenth of the bytes. Charges stored before as ``Charge`` objects still
    decode (:data:`DATACLASSES`).
    """

    type = Charge
    name = "charge"

    def encode(self, obj: Charge) -> list[Any]:
        return [obj.plan_id, obj.tier, str(obj.unit_price), obj.count]

    def decode(self, data: list[Any]) -> Charge:
        plan_id, tier, unit_price, count = data
        return Charge(plan_id, tier, Decimal(unit_price), count)


class ReceivableAsList(Transcoding):
    """A receivable as ``[reference, total, paid, currency, issued_on, due_on,
    settled_by, replaced_by]``: an account holds one per document it issued (in
    its snapshots), so each is one flat list, its amounts strings in one currency."""

    type = Receivable
    name = "receivable"

    def encode(self, obj: Receivable) -> list[Any]:
        return [
            obj.reference,
            str(obj.total.amount),
            str(obj.paid.amount),
            obj.currency,
            obj.issued_on.isoformat(),
            obj.due_on.isoformat(),
            obj.settled_by,
            obj.replaced_by,
        ]

    def decode(self, data: list[Any]) -> Receivable:
        reference, total, paid, currency, issued_on, due_on, settled_by, replaced_by = data
        return Receivable(
            reference,
            Money(Decimal(total), currency),
            Money(Decimal(paid), currency),
            date.fromisoformat(issued_on),
            date.fromisoformat(due_on),
            settled_by,
            replaced_by,
        )


class CreditAsList(Transcoding):
    """Held credit as ``[payment_id, amount, currency, reason, reference]`` (every
    payment event carries what the account holds afterwards)."""

    type = Credit
    name = "credit"

    def encode(self, obj: Credit) -> list[Any]:
        return [
            obj.payment_id,
            str(obj.amount.amount),
            obj.amount.currency,
            obj.reason,
            obj.reference,
        ]

    def decode(self, data: list[Any]) -> Credit:
        payment_id, amount, currency, reason, reference = data
        return Credit(payment_id, Money(Decimal(amount), currency), reason, reference)


class AllocationAsList(Transcoding):
    """An allocation as ``[payment_id, reference, amount, currency, from_credit]``."""

    type = Allocation
    name = "allocation"

    def encode(self, obj: Allocation) -> list[Any]:
        amount = obj.amount
        return [obj.payment_id, obj.reference, str(amount.amount), amount.currency, obj.from_credit]

    def decode(self, data: list[Any]) -> Allocation:
        payment_id, reference, amount, currency, from_credit = data
        return Allocation(payment_id, reference, Money(Decimal(amount), currency), from_credit)


class UsageEntryAsList(Transcoding):
    """An entry as ``[month, late, platform, custom_smtp, included, charges, plan_index]``
    (version-2 usage events carry one per batch and plan; stored before as objects)."""

    type = UsageEntry
    name = "usage_entry"

    def encode(self, obj: UsageEntry) -> list[Any]:
        return [
            str(obj.month),
            obj.late,
            obj.platform,
            obj.custom_smtp,
            obj.included,
            obj.charges,
            obj.plan_index,
        ]

    def decode(self, data: list[Any]) -> UsageEntry:
        text, late, platform, custom_smtp, included, charges, plan_index = data
        return UsageEntry(
            month(text), late, platform, custom_smtp, included, tuple(charges), plan_index
        )


class MonthStandingAsList(Transcoding):
    """A month's standing as ``[month, platform, included, custom_smtp, fee, currency,
    priced]`` (fee and currency null before the month's fee is known)."""

    type = MonthStanding
    name = "month_standing"

    def encode(self, obj: MonthStanding) -> list[Any]:
        fee = obj.fee
        return [
            str(obj.month),
            obj.platform,
            obj.included,
            obj.custom_smtp,
            None if fee is None else str(fee.amount),
            None if fee is None else fee.currency,
            obj.priced,
        ]

    def decode(self, data: list[Any]) -> MonthStanding:
        text, platform, included, custom_smtp, fee, currency, priced = data
        return MonthStanding(
            month(text),
            platform,
            included,
            custom_smtp,
            None if fee is None else Money(Decimal(fee), currency),
            tuple(priced),
        )


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


class EmailPlanAsList(Transcoding):
    """Email plan terms as ``[id, name, currency, monthly_fee, included_emails,
    tier_mode, [[up_to, unit_price], ...]]``.

    Most events of an email account carry its terms (opening, each month's fee,
    each close). Stored as objects, a plan is a dozen JSON objects the decoder
    calls back on, and is then validated; as one flat list it is one call, and
    the terms already seen come back from a cache without validating again.
    Plans stored before as ``EmailPlan`` objects still decode
    (:class:`ModelAsDict`).
    """

    type = EmailPlan
    name = "email_plan"
    FIELDS = (
        "kind",
        "id",
        "name",
        "currency",
        "monthly_fee",
        "included_emails",
        "tier_mode",
        "tiers",
    )
    CACHE_SIZE = 1024

    def __init__(self) -> None:
        if tuple(EmailPlan.model_fields) != self.FIELDS:  # a new field would be lost
            raise TypeError(f"EmailPlan's fields changed: {tuple(EmailPlan.model_fields)}")
        self._decoded: dict[tuple[Any, ...], EmailPlan] = {}

    def encode(self, obj: EmailPlan) -> list[Any]:
        tiers = [[tier.up_to, str(tier.unit_price)] for tier in obj.tiers]
        return [
            obj.id,
            obj.name,
            obj.currency,
            str(obj.monthly_fee),
            obj.included_emails,
            obj.tier_mode,
            tiers,
        ]

    def decode(self, data: list[Any]) -> EmailPlan:
        *terms, tiers = data
        key = (*terms, *[(up_to, price) for up_to, price in tiers])
        plan = self._decoded.get(key)
        if plan is None:
            plan_id, name, currency, monthly_fee, included_emails, tier_mode = terms
            plan = EmailPlan.model_validate(
                {
                    "id": plan_id,
                    "name": name,
                    "currency": currency,
                    "monthly_fee": Decimal(monthly_fee),
                    "included_emails": included_emails,
                    "tier_mode": tier_mode,
                    "tiers": [{"up_to": up_to, "unit_price": Decimal(p)} for up_to, p in tiers],
                }
            )
            if len(self._decoded) >= self.CACHE_SIZE:
                self._decoded.clear()
            self._decoded[key] = plan
        return plan


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
