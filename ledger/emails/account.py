"""The Account aggregate: one customer's billing history.

Public methods decide (check, price, compute); the private ``@event`` methods
only record the decision, because their bodies re-run on every replay and a
pricing rule inside one would silently rewrite the past.

The balance is credits minus debits, both kept exactly (unrounded):
credits are purchased credit; debits are the monthly fee
when a month opens, each email's charge as sent (recorded per batch and
month, the same whatever the batches), and at the close the document's
``total - accrued`` (rounding, tax and the volume true-up). A prepaid account
may send while its balance covers the next email; a postpay account is never
blocked and a negative balance is what it has been charged.

Payments are not credits: money received settles the account's documents
(:class:`ledger.payments.held.PaymentsHeld`), never the prepaid balance, so
one top-up reported both as ``account.credit-purchased`` and as a payment
raises the balance once (the payment is held as credit, with its reason).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from eventsourcing.domain import Aggregate, event

from ledger.documents import Document, PaymentMode, build_document
from ledger.email_counts import (
    E,
    MonthCount,
    split_by_month,
)
from ledger.emails.billing_months import BillingMonths
from ledger.emails.usage import (
    ClosedMonth,
    LateUsage,
    MonthStanding,
    MonthUsage,
    UsageEntry,
    WholeUsage,
    add_late,
    record_late,
)
from ledger.errors import InvalidAmount
from ledger.money import Money, check_minor_units
from ledger.opening import account_uuid, check_opening, check_plan_currency
from ledger.payments.allocation import Allocation, Credit
from ledger.payments.chasing import Chase, PaymentsChased
from ledger.payments.dunning import DunningState, Level, Transition
from ledger.payments.held import PaymentReport, owed
from ledger.payments.notices import NoticeChange
from ledger.payments.policy import DunningPolicy
from ledger.payments.schedule import Collection
from ledger.periods import Month, check_aware, local_date
from ledger.plans import EmailPlan


class Account(BillingMonths, PaymentsChased, Aggregate):
    #: Version 2 holds receivables and unapplied credit (``PaymentsHeld.upcast_v1_v2``);
    #: version 3 its dunning state and open notices (``PaymentsChased.upcast_v2_v3``).
    class_version = 3

    if TYPE_CHECKING:  # the event classes the @event decorators below create
        Opened: ClassVar[type[Aggregate.Created]]
        MonthOpened: ClassVar[type[Aggregate.Event]]
        CreditPurchased: ClassVar[type[Aggregate.Event]]
        SendingBlocked: ClassVar[type[Aggregate.Event]]
        SendingUnblocked: ClassVar[type[Aggregate.Event]]
        PlanChanged: ClassVar[type[Aggregate.Event]]
        DocumentIssued: ClassVar[type[Aggregate.Event]]
        MonthSkipped: ClassVar[type[Aggregate.Event]]
        Closed: ClassVar[type[Aggregate.Event]]
        PaymentReceived: ClassVar[type[Aggregate.Event]]
        CreditApplied: ClassVar[type[Aggregate.Event]]
        PaymentFailed: ClassVar[type[Aggregate.Event]]
        DunningChanged: ClassVar[type[Aggregate.Event]]

    @staticmethod
    def create_id(account_id: str, **_: object) -> uuid.UUID:
        return account_uuid(account_id)

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        *,
        account_id: str,
        plan: EmailPlan,
        payment_mode: PaymentMode,
        currency: str,
        timezone: str,
        tax_rate: Decimal,
        opened_at: datetime,
    ) -> Account:
        check_opening(plan, currency, timezone, tax_rate, opened_at)
        account = cls(
            account_id=account_id,
            plan=plan,
            payment_mode=payment_mode,
            currency=currency,
            timezone=timezone,
            tax_rate=tax_rate,
            effective_at=opened_at,
            first_month=Month.containing(opened_at, timezone),
        )
        account._open_month(account.first_month, opened_at)
        account._update_sending(opened_at)
        return account

    @event("Opened")
    def __init__(
        self,
        *,
        account_id: str,
        plan: EmailPlan,
        payment_mode: PaymentMode,
        currency: str,
        timezone: str,
        tax_rate: Decimal,
        effective_at: datetime,
        first_month: Month,
    ) -> None:
        self.account_id = account_id
        self.plan = plan
        # Terms by business time: an email is priced by the plan in force when it was sent.
        self.plans: list[tuple[datetime, EmailPlan]] = [(effective_at, plan)]
        self.payment_mode = payment_mode
        self.currency = currency
        self.timezone = timezone
        self.tax_rate = tax_rate
        self.opened_at = effective_at
        self.first_month = first_month
        self.current = first_month
        # Keyed by str(month): snapshots are JSON, whose object keys are strings.
        self.months: dict[str, MonthUsage] = {}
        self.closed_months: dict[str, ClosedMonth] = {}
        self.pending_late: tuple[LateUsage, ...] = ()
        self.credited = Money.zero(currency)
        self.debited = Money.zero(currency)
        self.blocked = False
        self.closed_at: datetime | None = None
        self.documents: list[str] = []
        self.receivables = {}
        self.credit = []
        self._chase_initial_state()

    # ------------------------------------------------------------------ credit

    def purchase_credit(self, amount: Money, reference: str, at: datetime) -> int:
        """Returns the version of the recording event (what the dedupe key points at)."""
        self.check_open()
        if amount.currency != self.currency:
            raise InvalidAmount(f"credit in {amount.currency}, account in {self.currency}")
        check_minor_units(amount)
        if amount.amount <= 0:
            raise InvalidAmount(f"credit must be positive, got {amount}")
        self._credit_purchased(amount=amount, reference=reference, effective_at=check_aware(at))
        recorded_version = self.version
        self._update_sending(at)
        return recorded_version

    @event("CreditPurchased")
    def _credit_purchased(self, amount: Money, reference: str, effective_at: datetime) -> None:
        self.credited = self.credited + amount

    # ------------------------------------------------------------------ usage

    def record_emails(self, emails: Sequence[E]) -> list[tuple[int, Sequence[E]]]:
        """Bill a batch of already-deduplicated emails: one event per month they fall in
        (in the account's time zone), whatever the batch size.

        A stored event thus covers one billing month, so an "as of" reading and
        ``ledger trace`` are exact across a month boundary. A month already
        documented gets its emails as late usage on the next document; a time
        before the account opened counts in the opening month. Returns each
        recording event's version with the emails it billed: their dedupe keys
        point at it. A batch is billed as if its emails came one at a time in
        the same order, so how the stream was cut into batches changes nothing.
        """
        if not emails:
            return []
        groups = self._group_by_month(emails)
        months = sorted(groups)
        versions = []
        for key in months:
            self._record_month(Month.of(*key), groups[key])
            versions.append(self.version)
        self._update_sending(max(group.at for group in groups.values()))
        parts = split_by_month(emails, self.timezone, self._month_of, months)
        return list(zip(versions, parts, strict=True))

    def _record_month(self, month: Month, group: MonthCount) -> None:
        standings: tuple[MonthStanding, ...] = ()
        if month < self.current:
            platform, smtp = group.platform, group.custom_smtp
            _, charges = record_late(self.closed_months[str(month)], platform)
            entries = [UsageEntry(month, True, platform, smtp, 0, charges)]
        else:
            usage = self.months.get(str(month), MonthUsage(month))
            entries = []
            for plan_index, platform, smtp in group.runs:
                terms = self._terms(month, self.plans[plan_index][1])
                updated, charges = usage.record(terms, platform, smtp)
                included = updated.included - usage.included
                entries.append(
                    UsageEntry(month, False, platform, smtp, included, charges, plan_index)
                )
                usage = updated
            standings = (usage.standing(),)
        charged = Money(sum((e.amount for e in entries), Decimal(0)), self.currency)
        self._emails_recorded(
            effective_at=group.at, entries=tuple(entries), charged=charged, standings=standings
        )

    class EmailsRecorded(Aggregate.Event):
        """A batch's emails of one month, as priced when sent.

        Version 2 records what the batch did (its entries, with the terms each
        was priced with) and the month's figures for the read models; replaying
        it extends the month from the entries, pricing nothing. Version 1
        stored the changed months whole, with every documented month and the
        late usage (~2 KB a batch): upcast, it is replayed as it stood.
        """

        class_version = 2

        effective_at: datetime
        entries: tuple[UsageEntry, ...]
        charged: Money
        standings: tuple[MonthStanding, ...]
        whole: WholeUsage | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            months = state.pop("months")
            state["standings"] = tuple(usage.standing() for usage in months)
            closed, late = state.pop("closed_months"), state.pop("pending_late")
            state["whole"] = WholeUsage(months, closed, late)

    @event(EmailsRecorded)
    def _emails_recorded(
        self,
        effective_at: datetime,
        entries: tuple[UsageEntry, ...],
        charged: Money,
        standings: tuple[MonthStanding, ...],
        whole: WholeUsage | None = None,
    ) -> None:
        if whole is not None:
            self.months.update({str(u.month): u for u in whole.months})
            self.closed_months.update({str(c.month): c for c in whole.closed_months})
            self.pending_late = whole.pending_late
        else:
            for entry in entries:
                self._add_entry(entry)
        self.debited = self.debited + charged

    def _add_entry(self, entry: UsageEntry) -> None:
        """Bookkeeping of what an entry recorded (run by the event, on every replay)."""
        key = str(entry.month)
        if entry.late:
            self.closed_months[key] = self.closed_months[key].with_late(entry.platform)
            if entry.platform:
                self.pending_late = add_late(
                    self.pending_late, entry.month, entry.platform, entry.charges
                )
        else:
            terms = self._terms(entry.month, self.plans[entry.plan_index][1])
            usage = self.months.get(key, MonthUsage(entry.month))
            self.months[key] = usage.extended(
                terms, entry.platform, entry.custom_smtp, entry.charges
            )

    # ------------------------------------------------------------------ sending status

    def _update_sending(self, at: datetime) -> None:
        # The next email is billed in the latest month known: that of ``at``, the current
        # one, or a later one already holding usage (so not only the batch's last email:
        # the outcome does not depend on where batches were cut).
        month = max(
            Month.containing(at, self.timezone),
            self.current,
            *(usage.month for usage in self.months.values()),
        )
        can_send = self.can_send(month)
        # The account id rides along: these events are published as they are.
        if self.blocked and can_send:
            self._sending_unblocked(
                account_id=self.account_id, effective_at=at, balance=self.balance
            )
        elif not self.blocked and not can_send:
            self._sending_blocked(account_id=self.account_id, effective_at=at, balance=self.balance)

    @event("SendingBlocked")
    def _sending_blocked(self, account_id: str, effective_at: datetime, balance: Money) -> None:
        self.blocked = True

    @event("SendingUnblocked")
    def _sending_unblocked(self, account_id: str, effective_at: datetime, balance: Money) -> None:
        self.blocked = False

    # ------------------------------------------------------------------ plans

    def change_plan(self, plan: EmailPlan, at: datetime) -> int:
        """New terms apply to usage sent from ``at`` on and to fees of later months.

        Returns the version of the recording event (the current one if nothing changed).
        """
        self.check_open()
        check_plan_currency(plan, self.currency)
        if plan == self.plan:
            return self.version
        self._plan_changed(plan=plan, effective_at=check_aware(at))
        recorded_version = self.version
        self._update_sending(at)
        return recorded_version

    @event("PlanChanged")
    def _plan_changed(self, plan: EmailPlan, effective_at: datetime) -> None:
        self.plan = plan
        self.plans = sorted([*self.plans, (effective_at, plan)], key=lambda item: item[0])

    # ------------------------------------------------------------------ periods

    def _open_month(self, month: Month, at: datetime) -> None:
        usage = self.months.get(str(month), MonthUsage(month))
        fee = Money.of(self.plan.monthly_fee, self.currency)
        self._month_opened(effective_at=at, usage=usage.with_fee(fee, self.plan), fee=fee)

    @event("MonthOpened")
    def _month_opened(self, effective_at: datetime, usage: MonthUsage, fee: Money) -> None:
        self.months[str(usage.month)] = usage
        self.debited = self.debited + fee

    def close_periods(
        self, as_of: datetime, grace: timedelta, next_number: Callable[[int], str]
    ) -> list[Document]:
        """Document every month that ended at least ``grace`` before ``as_of``.

        ``next_number(year)`` hands out the gapless document number; the caller
        saves this account and the number sequence in one transaction.
        """
        check_aware(as_of)
        issued: list[Document] = []
        issued_on = local_date(as_of, self.timezone)
        while self.current.closable_at(self.timezone, grace) <= as_of:
            month = self.current
            if self._has_nothing_to_bill(month):
                if not self.months:  # nor any later month: stop here
                    break
                # A later month holds usage (sent after closing): it gets its own document.
                self._month_skipped(
                    effective_at=as_of,
                    closed=ClosedMonth(month, 0, self._terms(month, self.plan)),
                )
                continue
            usage = self.months.get(str(month), MonthUsage(month))
            document = build_document(
                number=next_number(issued_on.year),
                account_id=self.account_id,
                payment_mode=self.payment_mode,
                usage=usage,
                late=self.pending_late,
                tax_rate=self.tax_rate,
                currency=self.currency,
                issued_on=issued_on,
            )
            last_plan = usage.segments[-1].plan if usage.segments else self._terms(month, self.plan)
            self._document_issued(
                effective_at=as_of,
                document=document,
                closed=ClosedMonth(month, usage.platform, last_plan),
            )
            issued.append(document)
            closed_month = (
                None if self.closed_at is None else Month.containing(self.closed_at, self.timezone)
            )
            if closed_month is None or month.next() <= closed_month:
                self._open_month(month.next(), as_of)
        if issued:
            self.apply_held_credit(as_of)
            self._update_sending(as_of)
        return issued

    @event("DocumentIssued")
    def _document_issued(
        self, effective_at: datetime, document: Document, closed: ClosedMonth
    ) -> None:
        self.months.pop(str(document.period), None)
        self.closed_months[str(document.period)] = closed
        self.pending_late = ()
        self.current = closed.month.next()
        self.debited = self.debited + document.balance_adjustment
        self.documents.append(document.number)
        # A receipt is settled from the prepaid balance as issued; an invoice is paid
        # by the customer, by its due date.
        self.receivables[document.number] = owed(
            document, "transfer", paid=document.kind == "receipt"
        )

    @event("MonthSkipped")
    def _month_skipped(self, effective_at: datetime, closed: ClosedMonth) -> None:
        self.closed_months[str(closed.month)] = closed
        self.current = closed.month.next()

    # ------------------------------------------------------------------ payments

    def receive_payment(self, report: PaymentReport, policy: DunningPolicy | None) -> int:
        """Money received (accepted from a closed account too: its last documents are
        owed). Returns the version of the recording event (what the dedupe key points at).
        A document it settles that was chased is no longer (``DunningChanged``)."""
        settlement = self.settle_payment(report)
        version = self._record_payment(settlement, report)
        self._chase_settlement(settlement, report.at, report, policy)
        return version

    def _record_chase(self, chase: Chase, at: datetime) -> None:
        """A suspension blocks sending as the prepaid block does; reinstatement lifts
        it unless the prepaid balance still blocks (:meth:`can_send`)."""
        super()._record_chase(chase, at)
        self._update_sending(at)

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

    # ------------------------------------------------------------------ closing

    def close(self, at: datetime) -> None:
        """Stop the subscription: no fee after the month of closing; usage is still billed,
        in a later month without included emails (:func:`terms_after_closing`)."""
        self.check_open()
        self._closed(effective_at=check_aware(at))

    @event("Closed")
    def _closed(self, effective_at: datetime) -> None:
        self.closed_at = effective_at
