"""An account billed by contacts (seed 002): a subscription renewed on its anniversary.

The account's *anchor* is the local date it opened. Allowance month ``k`` is
the k-th monthly anniversary period of the anchor (:mod:`ledger.contacts.renewal`):
local midnight of ``anchor + k months`` to local midnight of ``anchor + k + 1
months`` (month 0 starts at the opening itself; earlier emails count in it).
Every boundary between allowance months is billed once, in order, by
:meth:`ContactsAccount.close_periods`, as :mod:`ledger.contacts.billing_cycle` decides.

A proforma has no number; paying it in full issues the final invoice with
the next gapless number, whether the money came as a ``payment.succeeded``,
as held credit when it was issued, or from ``ledger mark-paid`` (all through
:meth:`ContactsAccount.receive_payment`). The subscription's first period is priced at the opening:
its amount is the floor under every later period of the same subscription
(:mod:`ledger.contacts.proformas`). A plan change (plan, products or period) is a new
subscription from the next renewal on, with a new floor. While unpaid, the
proforma of the latest renewal is *replaced* when a plan change dated at or
before its renewal instant arrives after it was priced: the new subscription
then starts at that renewal.

A renewal instant, once priced, is never counted again. A contact change
whose event time is at or before the latest renewal already priced (it was
reported late) is therefore counted from just after that instant
(``ContactChange.counted_from``): it reaches the next renewal, and the count
``ledger contacts --as-of`` rebuilds for any priced instant is always the one
its proforma states.

Contacts are not held here: an account may have millions. Each batch's
applied changes are recorded in one event (the history an auditor replays)
and the count is kept as a running sum; the stored copy of each contact's
latest version, which decides what a change does, is written beside the
events in the same transaction (``commands/store.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.contacts import billing_cycle
from ledger.contacts.allowance_months import AllowanceMonths
from ledger.contacts.billable import (
    BillableCount,
    ContactChange,
    ContactChangeLike,
    Held,
    apply_changes,
    billable_as_of,
)
from ledger.contacts.proforma_payments import NextNumber, ProformaPayments
from ledger.contacts.proformas import OpenProforma, overage_lines
from ledger.contacts.renewal import BillingPeriod, months_in
from ledger.contacts.subscriptions import AllowanceMonth, Subscription, product_prices
from ledger.documents import Document, Line
from ledger.email_counts import E, count_by_month, split_by_month
from ledger.money import Money
from ledger.opening import account_uuid, check_opening, check_plan_currency
from ledger.payments.allocation import Allocation, Credit
from ledger.payments.dunning import DunningState, Level, Transition
from ledger.payments.held import owed
from ledger.payments.notices import NoticeChange
from ledger.payments.schedule import Collection, cancel_collection
from ledger.periods import check_aware, local_date
from ledger.plans import ContactsPlan

#: How many billable contacts there were at an instant (``ledger contacts --as-of``).
ContactCounter = Callable[[datetime], int]


class ContactsAccount(AllowanceMonths, ProformaPayments, Aggregate):
    #: Version 2 holds receivables and unapplied credit (``ProformaPayments.upcast_v1_v2``);
    #: version 3 its collections, dunning state and open notices
    #: (``PaymentsChased.upcast_v2_v3``).
    class_version = 3
    if TYPE_CHECKING:  # the event classes the @event decorators below create
        Opened: ClassVar[type[Aggregate.Created]]
        ContactsChanged: ClassVar[type[Aggregate.Event]]
        EmailsRecorded: ClassVar[type[Aggregate.Event]]
        PlanChangeScheduled: ClassVar[type[Aggregate.Event]]
        ProformaIssued: ClassVar[type[Aggregate.Event]]
        AllowanceMonthClosed: ClassVar[type[Aggregate.Event]]
        ProformaReplaced: ClassVar[type[Aggregate.Event]]
        ProformaPaid: ClassVar[type[Aggregate.Event]]
        Closed: ClassVar[type[Aggregate.Event]]
        PaymentReceived: ClassVar[type[Aggregate.Event]]
        CreditApplied: ClassVar[type[Aggregate.Event]]
        PaymentFailed: ClassVar[type[Aggregate.Event]]
        DunningChanged: ClassVar[type[Aggregate.Event]]
        CollectionRequested: ClassVar[type[Aggregate.Event]]

    @staticmethod
    def create_id(account_id: str, **_: object) -> UUID:
        return account_uuid(account_id)

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        *,
        account_id: str,
        plan: ContactsPlan,
        products: tuple[str, ...],
        billing_period: BillingPeriod,
        currency: str,
        timezone: str,
        tax_rate: Decimal,
        opened_at: datetime,
    ) -> ContactsAccount:
        check_opening(plan, currency, timezone, tax_rate, opened_at)
        months_in(billing_period)
        product_prices(plan, products)  # refuses unknown or repeated products
        subscription = Subscription(1, plan, products, billing_period, start_month=0)
        return cls(
            account_id=account_id,
            subscription=subscription,
            currency=currency,
            timezone=timezone,
            tax_rate=tax_rate,
            effective_at=opened_at,
            anchor=local_date(opened_at, timezone),
        )

    @event("Opened")
    def __init__(
        self,
        *,
        account_id: str,
        subscription: Subscription,
        currency: str,
        timezone: str,
        tax_rate: Decimal,
        effective_at: datetime,
        anchor: date,
    ) -> None:
        self.account_id = account_id
        self.subscription = subscription
        self.pending: Subscription | None = None
        self.pending_at: datetime | None = None
        #: The latest renewal instant priced: contacts are never counted again up to it.
        self.counted_through: datetime | None = None
        #: Replaced proforma -> the one that replaced it.
        self.replaced: dict[str, str] = {}
        self.currency = currency
        self.timezone = timezone
        self.tax_rate = tax_rate
        self.opened_at = effective_at
        self.anchor = anchor
        self.billable = 0
        # Keyed by str(index): snapshots are JSON, whose object keys are strings.
        self.months: dict[str, AllowanceMonth] = {}
        self.documented_months = 0
        self.late_months: tuple[int, ...] = ()
        self.proforma_count = 0
        self.open_proformas: dict[str, OpenProforma] = {}
        self.invoices: list[str] = []
        self.closed_at: datetime | None = None
        self.receivables = {}
        self.credit = []
        self._chase_initial_state()

    # ------------------------------------------------------------------ contacts

    def record_contact_changes(
        self,
        changes: Sequence[ContactChangeLike],
        known: Mapping[str, Held],
    ) -> tuple[int, tuple[ContactChange, ...]]:
        """Apply a batch of contact changes (:func:`ledger.contacts.billable.apply_changes`); one
        event for the batch. Returns the version of the recording event (the current
        version when nothing applied) and the changes applied."""
        count, applied = apply_changes(
            changes, known, BillableCount(self.billable), self.counted_through
        )
        if not applied:
            return self.version, ()
        self._contacts_changed(
            effective_at=max(c.changed_at for c in applied),
            changes=applied,
            billable=count.value,
        )
        return self.version, tuple(applied)

    @event("ContactsChanged")
    def _contacts_changed(
        self, effective_at: datetime, changes: tuple[ContactChange, ...], billable: int
    ) -> None:
        self.billable = billable

    # ------------------------------------------------------------------ emails

    def record_emails(self, emails: Sequence[E]) -> list[tuple[int, Sequence[E]]]:
        """Count a batch's emails into their allowance months; one event per month.

        Nothing is priced here: a month's allowance is known once its period
        is priced, and overage is charged when the month is documented.
        Emails for an already documented month are *late*: what they add
        beyond its allowance goes on the next document. As for email plans,
        a stored event covers one allowance month, and each event's version
        is returned with the emails it recorded (what their dedupe keys point at).
        """
        if not emails:
            return []
        counts = count_by_month(emails, self.timezone, self.month_of)
        indices = sorted(counts)
        versions = []
        for index in indices:
            month, late = self._with_emails(index, counts[index])
            self._emails_recorded(effective_at=counts[index].at, months=(month,), late_months=late)
            versions.append(self.version)
        parts = split_by_month(emails, self.timezone, self.month_of, indices)
        return list(zip(versions, parts, strict=True))

    @event("EmailsRecorded")
    def _emails_recorded(
        self,
        effective_at: datetime,
        months: tuple[AllowanceMonth, ...],
        late_months: tuple[int, ...],
    ) -> None:
        self.months.update({str(m.index): m for m in months})
        self.late_months = late_months

    # ------------------------------------------------------------------ plans

    def change_plan(
        self,
        plan: ContactsPlan,
        products: tuple[str, ...] | None,
        billing_period: BillingPeriod | None,
        at: datetime,
    ) -> int:
        """A new subscription from the next renewal: the period already priced stands.

        ``products`` / ``billing_period`` left out keep the current choice.
        Asking again for the terms in force cancels a scheduled change.
        """
        self.check_open()
        check_plan_currency(plan, self.currency)
        current = self.subscription
        products = current.products if products is None else products
        period = current.period if billing_period is None else billing_period
        months_in(period)
        product_prices(plan, products)
        change = billing_cycle.plan_change(current, self.pending, plan, products, period)
        if change is None:
            return self.version
        self._plan_change_scheduled(
            effective_at=check_aware(at),
            plan=plan,
            products=products,
            period=period,
            cancelled=change == "cancel",
        )
        return self.version

    @event("PlanChangeScheduled")
    def _plan_change_scheduled(
        self,
        effective_at: datetime,
        plan: ContactsPlan,
        products: tuple[str, ...],
        period: BillingPeriod,
        cancelled: bool,
    ) -> None:
        self.pending, self.pending_at = billing_cycle.scheduled(
            self.subscription, plan, products, period, effective_at, cancelled=cancelled
        )

    # ------------------------------------------------------------------ billing

    def close_periods(
        self,
        as_of: datetime,
        grace: timedelta,
        count_contacts: ContactCounter,
        next_number: NextNumber,
    ) -> list[Document]:
        """Bill every allowance-month boundary that passed at least ``grace`` before ``as_of``
        (:mod:`ledger.contacts.billing_cycle` decides what each bills).

        Also prices the first period once the opening is ``grace`` old, and
        re-prices the unpaid renewal a late plan change predates. Held credit
        then pays what was issued; a proforma it pays in full gets its final
        invoice (``next_number``); the collection of each one left unpaid
        starts, attempt 1 due at ``as_of``. Returns the documents issued.
        """
        check_aware(as_of)
        issued: list[Document] = []
        issued_on = local_date(as_of, self.timezone)
        sub = self.subscription
        if sub.number == 1 and sub.periods_priced == 0:
            if not billing_cycle.is_due(self.opened_at, grace, as_of):
                return issued
            issued.append(self._renew(0, self.opened_at, [], issued_on, count_contacts))
        # A plan change that missed the renewal it was meant for, before the months
        # below are billed with that renewal's allowance.
        replacement = self._replacement_for_late_plan_change(issued_on)
        if replacement is not None:
            replaced, priced = replacement
            collection = self.collections.get(replaced)
            self._proforma_replaced(
                effective_at=as_of,
                replaced=replaced,
                proforma=priced.proforma,
                subscription=priced.subscription,
                months=priced.months,
            )
            self._chase_replacement(
                replaced, as_of, None if collection is None else cancel_collection(collection)
            )
            issued.append(priced.document)
        while True:
            index = self.documented_months
            boundary = self.month_start(index + 1)
            if not billing_cycle.is_due(boundary, grace, as_of) or self._billing_stopped(index):
                break
            usage = self._late_lines() + overage_lines(
                self._month(index), self.currency, late=False
            )
            bill = billing_cycle.boundary_bill(
                next_month=index + 1,
                next_renewal_month=self.subscription.next_renewal_month,
                boundary=boundary,
                closed_at=self.closed_at,
                usage=usage,
            )
            if bill == "renewal":
                issued.append(self._renew(index + 1, boundary, usage, issued_on, count_contacts))
            elif bill == "overage":
                priced = self._overage_proforma(index, usage, issued_on)
                self._proforma_issued(
                    effective_at=as_of,
                    proforma=priced.proforma,
                    subscription=priced.subscription,
                    months=priced.months,
                    documented_months=index + 1,
                )
                issued.append(priced.document)
            else:
                unbilled = {i: self._month(i).unbilled for i in {index, *self.late_months}}
                self._allowance_month_closed(
                    effective_at=as_of,
                    documented_months=index + 1,
                    carried=billing_cycle.carried(unbilled),
                )
        if issued:
            settlement = self.apply_held_credit(as_of)
            if settlement is not None:
                issued.extend(self._final_invoices(settlement, as_of, next_number))
            # What held credit left unpaid is collected by card from now on.
            proformas = [d.number for d in issued if d.kind == "proforma"]
            self._start_collections(proformas, as_of)
        return issued

    def _renew(
        self,
        start_month: int,
        counted_at: datetime,
        usage: list[Line],
        issued_on: date,
        count_contacts: ContactCounter,
    ) -> Document:
        terms = self._terms_at(start_month, counted_at)
        contacts = count_contacts(counted_at)
        priced = self._priced_renewal(start_month, counted_at, terms, usage, issued_on, contacts)
        self._proforma_issued(
            effective_at=max(counted_at, self.opened_at),
            proforma=priced.proforma,
            subscription=priced.subscription,
            months=priced.months,
            documented_months=start_month,
        )
        return priced.document

    @event("ProformaIssued")
    def _proforma_issued(
        self,
        effective_at: datetime,
        proforma: OpenProforma,
        subscription: Subscription,
        months: tuple[AllowanceMonth, ...],
        documented_months: int,
    ) -> None:
        # Every proforma documents the months before ``documented_months`` (the opening
        # one: none, when no month is late yet), so the late ones are all billed now.
        self.proforma_count += 1
        self.open_proformas[proforma.document.number] = proforma
        self.receivables[proforma.document.number] = owed(proforma.document, "collection")
        self.counted_through = proforma.counted_at or self.counted_through
        self.pending, self.pending_at = billing_cycle.pending_after(
            self.pending, self.pending_at, self.subscription, subscription
        )
        self.subscription = subscription
        self.months.update({str(m.index): m for m in months})
        self.late_months = ()
        self.documented_months = documented_months

    @event("AllowanceMonthClosed")
    def _allowance_month_closed(
        self, effective_at: datetime, documented_months: int, carried: tuple[int, ...]
    ) -> None:
        self.late_months = carried
        self.documented_months = documented_months

    @event("ProformaReplaced")
    def _proforma_replaced(
        self,
        effective_at: datetime,
        replaced: str,
        proforma: OpenProforma,
        subscription: Subscription,
        months: tuple[AllowanceMonth, ...],
    ) -> None:
        del self.open_proformas[replaced]
        self.replaced[replaced] = proforma.document.number
        self.proforma_count += 1
        self.open_proformas[proforma.document.number] = proforma
        old = self.receivables.get(replaced)
        if old is not None:
            self.receivables[replaced] = replace(old, replaced_by=proforma.document.number)
        self.receivables[proforma.document.number] = owed(proforma.document, "collection")
        self.pending, self.pending_at = billing_cycle.pending_after(
            self.pending, self.pending_at, self.subscription, subscription
        )
        self.subscription = subscription
        self.months.update({str(m.index): m for m in months})

    @event("ProformaPaid")
    def _proforma_paid(self, effective_at: datetime, proforma: str, invoice: Document) -> None:
        del self.open_proformas[proforma]
        self.invoices.append(invoice.number)
        # Paid by the payment recorded before it (or, in history from before payments
        # were events, by this event alone); the invoice was paid by the proforma.
        self._paid_in_full(proforma)
        self._collection_ended(proforma)
        self.receivables[invoice.number] = owed(invoice, "collection", paid=True)

    @event("PaymentReceived")
    def _payment_received(
        self,
        effective_at: datetime,
        payment_id: str,
        amount: Money,
        reference: str | None,
        request_id: str | None,
        allocations: tuple[Allocation, ...],
        unapplied: tuple[Credit, ...],
        credit: tuple[Credit, ...],
    ) -> None:
        self._settled(allocations, credit)

    @event("CreditApplied")
    def _credit_applied(
        self,
        effective_at: datetime,
        allocations: tuple[Allocation, ...],
        credit: tuple[Credit, ...],
    ) -> None:
        self._settled(allocations, credit)

    @event("PaymentFailed")
    def _payment_failed(
        self,
        effective_at: datetime,
        payment_id: str,
        amount: Money,
        reference: str | None,
        request_id: str | None,
        reason: str,
        retryable: bool,
    ) -> None:
        pass  # the fact as reported: what it changes is recorded by a DunningChanged

    @event("DunningChanged")
    def _dunning_changed(
        self,
        effective_at: datetime,
        account_id: str,
        state: DunningState,
        delinquent: dict[str, Level],
        transitions: tuple[Transition, ...],
        notice_changes: tuple[NoticeChange, ...],
        collections: tuple[Collection, ...],
    ) -> None:
        self._chase_recorded(state, delinquent, notice_changes, collections)

    @event("CollectionRequested")
    def _collection_requested(
        self,
        effective_at: datetime,
        account_id: str,
        request_id: str,
        reference: str,
        amount: Money,
        attempt: int,
    ) -> None:
        self._requested(reference, request_id)

    # ------------------------------------------------------------------ closing

    def close(self, at: datetime) -> None:
        """No renewal after the closing; the emails of its month are still billed."""
        self.check_open()
        self._closed(effective_at=check_aware(at))

    @event("Closed")
    def _closed(self, effective_at: datetime) -> None:
        self.closed_at = effective_at


def contacts_as_of(history: Iterable[object], at: datetime) -> dict[str, ContactChange]:
    """Billable contacts at ``at`` from an account's stored events (``ledger contacts``)."""
    changes = (
        change
        for event in history
        if isinstance(event, ContactsAccount.ContactsChanged)
        for change in event.changes  # type: ignore[attr-defined]
    )
    return billable_as_of(changes, at)
