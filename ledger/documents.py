"""End-of-month documents: a receipt (prepaid) or an invoice (postpay).

Every line is rounded once, half-up to the currency's minor unit; the
subtotal is the sum of the rounded lines; tax is the subtotal times the
account's rate, rounded the same way; total = subtotal + tax. A document
states the exact amount that was already debited from the balance for it
during the month (``accrued``), so the close moves the balance by
``total - accrued``: the rounding, tax and volume true-up, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from ledger.contacts.renewal import RenewalPeriod
from ledger.emails.pricing import Charge, tier_bounds, total
from ledger.emails.usage import LateUsage, MonthUsage
from ledger.errors import InvariantBroken
from ledger.money import Money, money_sum
from ledger.periods import Month
from ledger.plans import EmailPlan

PaymentMode = Literal["prepaid", "postpaid"]
DocumentKind = Literal["receipt", "invoice", "proforma"]
LineKind = Literal[
    # email plans (seed 000)
    "fee",
    "included",
    "usage",
    "volume_true_up",
    "custom_smtp",
    "late_usage",
    # contacts plans (seed 002)
    "subscription",
    "product",
    "period_discount",
    "minimum_price",
    "overage",
    "late_overage",
]

#: Postpay invoices are payable within two weeks of the invoice date (seed 000).
POSTPAY_TERMS = timedelta(days=14)


class DocumentInvariantBroken(InvariantBroken):
    pass


@dataclass(frozen=True, slots=True)
class Line:
    kind: LineKind
    description: str
    quantity: int
    unit_price: Decimal | None
    amount: Money


@dataclass(frozen=True, slots=True)
class Document:
    """A receipt, an invoice or a proforma.

    ``number`` is the gapless yearly number (``2026-000042``) of a receipt or
    invoice; a proforma carries its per-account id instead (``PF-acct-7-0003``),
    which never takes a number. ``period`` is a calendar month (email plans)
    or a subscription's renewal period (contacts plans). ``proforma`` names
    the proforma a final invoice settles; ``contacts`` is the billable count a
    subscription was priced with.
    """

    number: str
    kind: DocumentKind
    account_id: str
    period: Month | RenewalPeriod
    issued_on: date
    due_on: date | None
    currency: str
    lines: tuple[Line, ...]
    subtotal: Money
    tax_rate: Decimal
    tax: Money
    total: Money
    accrued: Money
    proforma: str | None = None
    contacts: int | None = None

    def check_invariants(self) -> None:
        if money_sum([line.amount for line in self.lines], self.currency) != self.subtotal:
            raise DocumentInvariantBroken(f"{self.number}: lines do not sum to the subtotal")
        if self.subtotal + self.tax != self.total:
            raise DocumentInvariantBroken(f"{self.number}: subtotal + tax != total")
        for amount in [*(line.amount for line in self.lines), self.subtotal, self.tax, self.total]:
            rounded = amount.rounded()
            if (
                amount != rounded
                or amount.amount.as_tuple().exponent != rounded.amount.as_tuple().exponent
            ):
                raise DocumentInvariantBroken(f"{self.number}: {amount} is not in minor units")

    @property
    def balance_adjustment(self) -> Money:
        """What the close debits on top of what the month already debited."""
        return self.total - self.accrued


def _tier_label(plan: EmailPlan, tier: int) -> str:
    low, high = tier_bounds(plan)[tier - 1]
    first = max(low, plan.included_emails) + 1
    return f"{first:,}+" if high is None else f"{first:,}-{high:,}"


def _charge_line(charge: Charge, plan: EmailPlan, currency: str, how: str) -> Line:
    return Line(
        kind="usage",
        description=(
            f"Emails, {plan.name}, tier {charge.tier} ({_tier_label(plan, charge.tier)}){how}"
        ),
        quantity=charge.count,
        unit_price=charge.unit_price,
        amount=Money(charge.amount, currency).rounded(),
    )


def usage_lines(usage: MonthUsage, payment_mode: PaymentMode, currency: str) -> list[Line]:
    lines: list[Line] = []
    true_up_exact = Decimal(0)
    charged_rounded = Money.zero(currency)
    for seg in usage.segments:
        volume_mode = seg.plan.tier_mode == "volume"
        if volume_mode and payment_mode == "prepaid":
            # Charged during the month as sent (each email at the tier it reached); trued up below.
            for charge in seg.charged:
                line = _charge_line(charge, seg.plan, currency, ", charged as sent")
                lines.append(line)
                charged_rounded = charged_rounded + line.amount
            true_up_exact += total(usage.final_charges(seg))
        else:
            how = f", month volume {usage.platform:,}" if volume_mode else ""
            for charge in usage.final_charges(seg):
                lines.append(_charge_line(charge, seg.plan, currency, how))
    if charged_rounded.amount or true_up_exact:
        final = Money(true_up_exact, currency).rounded()
        lines.append(
            Line(
                kind="volume_true_up",
                description=f"Volume discount true-up (month volume {usage.platform:,})",
                quantity=usage.platform,
                unit_price=None,
                amount=final - charged_rounded,
            )
        )
    return lines


def build_document(
    *,
    number: str,
    account_id: str,
    payment_mode: PaymentMode,
    usage: MonthUsage,
    late: tuple[LateUsage, ...],
    tax_rate: Decimal,
    currency: str,
    issued_on: date,
) -> Document:
    lines: list[Line] = []
    if usage.fee is not None and usage.fee_plan is not None:
        lines.append(
            Line(
                "fee",
                f"Monthly fee, {usage.fee_plan.name}",
                1,
                usage.fee.amount,
                usage.fee.rounded(),
            )
        )
    if usage.included:
        lines.append(
            Line(
                "included",
                "Included emails",
                usage.included,
                Decimal(0),
                Money.zero(currency).rounded(),
            )
        )
    lines.extend(usage_lines(usage, payment_mode, currency))
    if usage.custom_smtp:
        lines.append(
            Line(
                "custom_smtp",
                "Emails via custom SMTP (never charged)",
                usage.custom_smtp,
                Decimal(0),
                Money.zero(currency).rounded(),
            )
        )
    for item in late:
        lines.append(
            Line(
                "late_usage",
                f"Late usage from {item.month}: emails sent then, reported after it closed",
                item.count,
                None,
                Money(item.amount, currency).rounded(),
            )
        )
    accrued = Money(usage.charged + sum((i.amount for i in late), Decimal(0)), currency)
    if usage.fee is not None:
        accrued = accrued + usage.fee
    return assemble(
        number=number,
        kind="receipt" if payment_mode == "prepaid" else "invoice",
        account_id=account_id,
        period=usage.month,
        issued_on=issued_on,
        due_on=None if payment_mode == "prepaid" else issued_on + POSTPAY_TERMS,
        currency=currency,
        lines=lines,
        tax_rate=tax_rate,
        accrued=accrued,
    )


def assemble(
    *,
    number: str,
    kind: DocumentKind,
    account_id: str,
    period: Month | RenewalPeriod,
    issued_on: date,
    due_on: date | None,
    currency: str,
    lines: list[Line],
    tax_rate: Decimal,
    accrued: Money,
    proforma: str | None = None,
    contacts: int | None = None,
) -> Document:
    """Totals from rounded lines (the one rounding rule), checked before anyone sees them."""
    subtotal = money_sum([line.amount for line in lines], currency).rounded()
    tax = (subtotal * tax_rate).rounded()
    document = Document(
        number=number,
        kind=kind,
        account_id=account_id,
        period=period,
        issued_on=issued_on,
        due_on=due_on,
        currency=currency,
        lines=tuple(lines),
        subtotal=subtotal,
        tax_rate=tax_rate,
        tax=tax,
        total=subtotal + tax,
        accrued=accrued,
        proforma=proforma,
        contacts=contacts,
    )
    document.check_invariants()
    return document
