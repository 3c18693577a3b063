"""The allowance months of a contacts account, and what its billing reads of them.

:class:`ledger.contacts.account.ContactsAccount` inherits these queries: they read
its state and decide nothing alone (the rules are :mod:`ledger.contacts.renewal`'s calendar,
:mod:`ledger.contacts.billing_cycle` and :mod:`ledger.contacts.proformas`), and they never record.
Kept apart so the aggregate module holds its commands and events.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

from ledger.contacts import billing_cycle
from ledger.contacts.proformas import OpenProforma, overage_lines, proforma_document
from ledger.contacts.renewal import RenewalPeriod, period_number, renewal_period
from ledger.contacts.subscriptions import AllowanceMonth, Subscription, allowance
from ledger.documents import Document, Line
from ledger.errors import InvariantBroken
from ledger.periods import local_date
from ledger.plans import ContactsPlan


class AllowanceMonths:
    """Queries over the aggregate state below (set by its ``Opened`` event)."""

    account_id: str
    subscription: Subscription
    pending: Subscription | None
    pending_at: datetime | None
    counted_through: datetime | None
    currency: str
    timezone: str
    tax_rate: Decimal
    opened_at: datetime
    anchor: date
    months: dict[str, AllowanceMonth]
    late_months: tuple[int, ...]
    proforma_count: int
    open_proformas: dict[str, OpenProforma]
    closed_at: datetime | None
    billable: int
    documented_months: int

    @property
    def plan(self) -> ContactsPlan:
        return self.subscription.plan

    def month_start(self, index: int) -> datetime:
        """Local midnight that starts allowance month ``index`` (month 0: the opening)."""
        if index == 0:
            return self.opened_at
        return self.month_period(index).starts_at(self.timezone)

    def month_period(self, index: int) -> RenewalPeriod:
        return renewal_period(self.anchor, "month", index)

    def months_from(self, first: int, count: int) -> RenewalPeriod:
        """Allowance months ``first`` to ``first + count`` (exclusive) as one period."""
        return RenewalPeriod(self.month_period(first).start, self.month_period(first + count).start)

    def _month(self, index: int) -> AllowanceMonth:
        """A month as held; one no period priced (after closing) has no allowance,
        and its emails cost the current plan's overage price."""
        held = self.months.get(str(index))
        month = held if held is not None else AllowanceMonth(index, self.month_period(index))
        if month.unit_price is None:
            month = replace(month, unit_price=self.plan.overage_unit_price)
        return month

    def month_index(self, instant: datetime) -> int:
        return self.month_of(local_date(instant, self.timezone))

    def month_of(self, day: date) -> int:
        """The allowance month of a local day: one before the opening counts in month 0."""
        return 0 if day < self.anchor else period_number(self.anchor, "month", day)

    def _terms_at(self, start_month: int, renewal: datetime) -> Subscription:
        return billing_cycle.terms_at(
            self.subscription, self.pending, self.pending_at, start_month, renewal
        )

    def _billing_stopped(self, index: int) -> bool:
        return billing_cycle.billing_stopped(
            closed_at=self.closed_at,
            month_start=self.month_start(index),
            emails_from_then_on=any(
                int(key) >= index and (month.platform or month.custom_smtp)
                for key, month in self.months.items()
            ),
            late=self._late_lines(),
        )

    def _late_lines(self) -> list[Line]:
        lines: list[Line] = []
        for index in self.late_months:
            lines.extend(overage_lines(self._month(index), self.currency, late=True))
        return lines

    def _billed_months(self, index: int) -> tuple[AllowanceMonth, ...]:
        """The ended month and the late months with everything beyond allowance now billed."""
        indices = sorted({index, *self.late_months})
        months = [self._month(i) for i in indices]
        return tuple(replace(m, billed=m.overage) for m in months)

    def _proforma_document(
        self, period: RenewalPeriod, lines: list[Line], issued_on: date, contacts: int | None
    ) -> Document:
        return proforma_document(
            account_id=self.account_id,
            sequence=self.proforma_count + 1,
            period=period,
            lines=lines,
            issued_on=issued_on,
            currency=self.currency,
            tax_rate=self.tax_rate,
            contacts=contacts,
        )

    def _latest_renewal(self) -> tuple[OpenProforma, datetime, Subscription] | None:
        """The unpaid proforma of the current subscription's latest period, if any, with
        the instant it counted and the terms it priced."""
        for held in self.open_proformas.values():
            counted_at, terms = held.counted_at, held.subscription
            if (
                counted_at is not None
                and counted_at == self.counted_through
                and terms is not None
                and terms.number == self.subscription.number
            ):
                return held, counted_at, terms
        return None

    def _priced_month(self, index: int, plan: ContactsPlan, contacts: int) -> AllowanceMonth:
        return replace(
            self._month(index),
            contacts=contacts,
            allowance=allowance(contacts, plan),
            unit_price=plan.overage_unit_price,
        )

    def _renewed_months(
        self, start_month: int, terms: Subscription, contacts: int
    ) -> tuple[AllowanceMonth, ...]:
        """The month that ended, now billed, and the renewed period's months, priced."""
        billed = self._billed_months(start_month - 1) if start_month > 0 else ()
        priced = (
            self._priced_month(i, terms.plan, contacts)
            for i in range(start_month, start_month + terms.months)
        )
        return (*billed, *priced)

    def _repriced_months(
        self, start: int, replaced: Subscription, terms: Subscription, contacts: int
    ) -> tuple[AllowanceMonth, ...]:
        """The replacement's months, priced; those of the replaced period beyond it, unpriced."""
        end = start + terms.months
        return tuple(
            self._priced_month(i, terms.plan, contacts)
            if i < end
            else replace(self._month(i), contacts=None, allowance=None, unit_price=None)
            for i in range(start, max(start + replaced.months, end))
        )

    def check_invariants(self) -> None:
        """The count never goes negative; every unpaid proforma adds up; no month is
        documented twice, and every late month is one already documented."""
        if self.billable < 0:
            raise InvariantBroken(f"{self.account_id}: negative billable contact count")
        for held in self.open_proformas.values():
            held.document.check_invariants()
        for month in self.months.values():
            if month.billed > month.overage:
                raise InvariantBroken(
                    f"{self.account_id}: month {month.index} billed {month.billed} emails"
                    f" of {month.overage} beyond its allowance"
                )
        if any(index >= self.documented_months for index in self.late_months):
            raise InvariantBroken(f"{self.account_id}: a late month is not documented yet")
