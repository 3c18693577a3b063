"""The allowance months of a contacts account, and what its billing reads of them.

:class:`ledger.contacts.account.ContactsAccount` inherits these queries: they read
its state and price from it, deciding nothing alone (the rules are
:mod:`ledger.contacts.renewal`'s calendar, :mod:`ledger.contacts.billing_cycle` and
:mod:`ledger.contacts.proformas`), and they never record. Kept apart so the
aggregate module holds its commands and events.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from ledger.contacts import billing_cycle
from ledger.contacts.proformas import (
    OpenProforma,
    ProformaNotFound,
    overage_lines,
    proforma_document,
)
from ledger.contacts.renewal import RenewalPeriod, period_number, renewal_period
from ledger.contacts.subscriptions import AllowanceMonth, Subscription, allowance
from ledger.documents import Document, Line
from ledger.email_counts import MonthCount
from ledger.errors import AccountClosed, InvariantBroken
from ledger.periods import local_date
from ledger.plans import ContactsPlan


@dataclass(frozen=True, slots=True)
class PricedProforma:
    """A proforma priced from the state, and what issuing it records."""

    proforma: OpenProforma
    subscription: Subscription
    months: tuple[AllowanceMonth, ...]

    @property
    def document(self) -> Document:
        return self.proforma.document


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
    replaced: dict[str, str]
    billable: int
    documented_months: int

    def check_open(self) -> None:
        if self.closed_at is not None:
            raise AccountClosed(self.account_id)

    def open_proforma(self, proforma_id: str) -> OpenProforma:
        """The unpaid proforma ``proforma_id``; a replaced one names its replacement."""
        held = self.open_proformas.get(proforma_id)
        if held is not None:
            return held
        if proforma_id not in self.replaced:
            raise ProformaNotFound(self.account_id, proforma_id)
        replacement = proforma_id
        while replacement in self.replaced:
            replacement = self.replaced[replacement]
        raise ProformaNotFound(self.account_id, proforma_id, f"; it was replaced by {replacement}")

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

    def _with_emails(self, index: int, count: MonthCount) -> tuple[AllowanceMonth, tuple[int, ...]]:
        """Month ``index`` with ``count`` added, and the late months after it: a month
        already documented becomes late."""
        month = self._month(index)
        month = replace(
            month,
            platform=month.platform + count.platform,
            custom_smtp=month.custom_smtp + count.custom_smtp,
        )
        if index < self.documented_months:
            return month, tuple(sorted({*self.late_months, index}))
        return month, self.late_months

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

    def _priced_renewal(
        self,
        start_month: int,
        counted_at: datetime,
        terms: Subscription,
        usage: list[Line],
        issued_on: date,
        contacts: int,
    ) -> PricedProforma:
        """The renewal at ``start_month``: the period priced for ``contacts``, with the usage
        billed on it; the first price of a subscription sets its floor."""
        period = self.months_from(start_month, terms.months)
        sets_floor = terms.periods_priced == 0
        lines = billing_cycle.priced_lines(
            terms, period, contacts, self.currency, sets_floor=sets_floor
        )
        document = self._proforma_document(period, [*lines, *usage], issued_on, contacts)
        if sets_floor:
            terms = replace(terms, floor=billing_cycle.lines_total(lines))
        return PricedProforma(
            OpenProforma(document, counted_at, terms, tuple(usage)),
            replace(terms, periods_priced=terms.periods_priced + 1),
            self._renewed_months(start_month, terms, contacts),
        )

    def _overage_proforma(self, index: int, usage: list[Line], issued_on: date) -> PricedProforma:
        """Month ``index``'s overage (and the late months'), billed between renewals."""
        document = self._proforma_document(self.month_period(index), usage, issued_on, None)
        return PricedProforma(
            OpenProforma(document, None, None, tuple(usage)),
            self.subscription,
            self._billed_months(index),
        )

    def _replacement_for_late_plan_change(
        self, issued_on: date
    ) -> tuple[str, PricedProforma] | None:
        """The latest renewal re-priced with a plan change dated at or before it, and the
        proforma it replaces.

        Only while it is unpaid and none of its months is billed yet; the count
        is the one it was priced with (that instant is never counted again).
        The new subscription starts at that renewal and its floor is this price.
        """
        latest = self._latest_renewal()
        pending, pending_at = self.pending, self.pending_at
        if latest is None or pending is None or pending_at is None:
            return None
        held, counted_at, priced = latest
        start = priced.next_renewal_month
        contacts = held.document.contacts
        if contacts is None or not billing_cycle.can_replace(
            pending_at=pending_at,
            counted_at=counted_at,
            documented_months=self.documented_months,
            start_month=start,
        ):
            return None
        terms = replace(pending, start_month=start)
        period = self.months_from(start, terms.months)
        lines = billing_cycle.priced_lines(terms, period, contacts, self.currency, sets_floor=True)
        document = self._proforma_document(period, [*lines, *held.usage_lines], issued_on, contacts)
        return held.document.number, PricedProforma(
            replace(held, document=document, subscription=terms),
            replace(terms, periods_priced=1, floor=billing_cycle.lines_total(lines)),
            self._repriced_months(start, priced, terms, contacts),
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
