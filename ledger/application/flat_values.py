"""The ledger's values stored as flat JSON lists: money, months, charges, usage entries
and standings, contact changes, payments' receivables, credit and allocations, email
plan terms.

These are what every usage and payment event carries, often many of each. As a
list, a value is one JSON object for the decoder to call back on (its fields
plain strings and numbers inside it) instead of one per field, and a tenth of
the bytes. Each list's order is in its class's docstring. The object forms they
replace still decode (:mod:`ledger.application.transcodings`).
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from eventsourcing.persistence import Transcoding

from ledger.contacts.billable import ContactChange
from ledger.emails.pricing import Charge
from ledger.emails.usage import MonthStanding, UsageEntry
from ledger.money import Money
from ledger.payments.allocation import Allocation, Credit
from ledger.payments.receivables import Receivable
from ledger.periods import Month
from ledger.plans import EmailPlan


@functools.lru_cache(maxsize=4096)
def month(text: str) -> Month:
    """A stored month, parsed once: a month is a value, and every usage event names one."""
    return Month.parse(text)


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
    decode (:data:`ledger.application.transcodings.DATACLASSES`).
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


class EmailPlanAsList(Transcoding):
    """Email plan terms as ``[id, name, currency, monthly_fee, included_emails,
    tier_mode, [[up_to, unit_price], ...]]``.

    Most events of an email account carry its terms (opening, each month's fee,
    each close). Stored as objects, a plan is a dozen JSON objects the decoder
    calls back on, and is then validated; as one flat list it is one call, and
    the terms already seen come back from a cache without validating again.
    Plans stored before as ``EmailPlan`` objects still decode
    (:class:`ledger.application.transcodings.ModelAsDict`).
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
