"""The Account aggregate: one customer's billing history.

Public methods decide (check, price, compute); the private ``@event`` methods
only record the decision, because their bodies re-run on every replay and a
pricing rule inside one would silently rewrite the past.

The balance is credits minus debits, both kept exactly (unrounded):
credits are purchased credit (and later, payments); debits are the monthly fee
when a month opens, each batch's usage charge when it is recorded, and at the
close the document's ``total - accrued`` (rounding, tax and the volume
true-up). A prepaid account may send while its balance covers the next email;
a postpay account is never blocked and a negative balance is what it owes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

from eventsourcing.domain import Aggregate, event

from ledger.documents import Document, PaymentMode, build_document
from ledger.errors import AccountClosed, InvalidAmount, LedgerError, PlanNotAllowed
from ledger.money import Money, check_currency, check_minor_units
from ledger.periods import Month, NaiveDatetime, check_aware, check_timezone, local_date, zone
from ledger.plans import ContactsPlan, EmailPlan
from ledger.pricing import Charge, next_email_price, total
from ledger.usage import ClosedMonth, LateUsage, MonthUsage, add_late, record_late

ACCOUNT_NAMESPACE = uuid.UUID("6f1c8d1e-4b7a-5c51-9a57-2d0e6b7f0a11")

Route = Literal["platform", "custom_smtp"]


def check_plan_currency(plan: EmailPlan | ContactsPlan, currency: str) -> None:
    if plan.currency != currency:
        raise PlanNotAllowed(
            f"plan {plan.id!r} is priced in {plan.currency}, the account in {currency}"
        )


def account_uuid(account_id: str) -> uuid.UUID:
    """Aggregate ids derive from the upstream id, so a replayed opening hits the same stream."""
    return uuid.uuid5(ACCOUNT_NAMESPACE, f"account:{account_id}")


@dataclass(frozen=True, slots=True)
class SentEmail:
    sent_at: datetime
    route: Route


class SentEmailLike(Protocol):
    """What :meth:`Account.record_emails` reads of an email (a ``SentEmail`` or a command item)."""

    @property
    def sent_at(self) -> datetime: ...

    @property
    def route(self) -> Route: ...


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """What one batch did to one month: the audit line behind a ledger event."""

    month: Month
    late: bool
    platform: int
    custom_smtp: int
    included: int
    charges: tuple[Charge, ...]

    @property
    def amount(self) -> Decimal:
        return total(self.charges)


class Account(Aggregate):
    if TYPE_CHECKING:  # the event classes the @event decorators below create
        Opened: ClassVar[type[Aggregate.Created]]
        MonthOpened: ClassVar[type[Aggregate.Event]]
        CreditPurchased: ClassVar[type[Aggregate.Event]]
        EmailsRecorded: ClassVar[type[Aggregate.Event]]
        SendingBlocked: ClassVar[type[Aggregate.Event]]
        SendingUnblocked: ClassVar[type[Aggregate.Event]]
        PlanChanged: ClassVar[type[Aggregate.Event]]
        DocumentIssued: ClassVar[type[Aggregate.Event]]
        Closed: ClassVar[type[Aggregate.Event]]

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
        check_currency(currency)
        check_timezone(timezone)
        check_aware(opened_at)
        check_plan_currency(plan, currency)
        if not Decimal(0) <= tax_rate < Decimal(1):
            raise InvalidAmount(f"tax rate must be in [0, 1), got {tax_rate}")
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

    # ------------------------------------------------------------------ queries

    @property
    def balance(self) -> Money:
        return self.credited - self.debited

    def volume(self, month: Month) -> int:
        usage = self.months.get(str(month))
        return usage.platform if usage else 0

    def can_send(self, at_month: Month) -> bool:
        if self.payment_mode == "postpaid":
            return True
        price = next_email_price(self.plan, self.volume(at_month))
        return self.balance.amount >= price

    def check_open(self) -> None:
        if self.closed_at is not None:
            raise AccountClosed(self.account_id)

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

    def record_emails(self, emails: Sequence[SentEmailLike]) -> int:
        """Bill a batch of already-deduplicated emails: one event, whatever the batch size.

        Emails are grouped by the month their send time falls in (account time
        zone). A month already documented gets the emails as late usage on the
        next document; a time before the account opened counts in the opening
        month. Returns the version of the recording event: the dedupe keys of
        these emails point at it.
        """
        if not emails:
            return self.version
        counts, at = self._count_by_month(emails)
        entries: list[UsageEntry] = []
        months: dict[Month, MonthUsage] = {}
        closed: dict[Month, ClosedMonth] = {}
        late = self.pending_late
        for year, month_number, plan_index in sorted(counts):
            platform, smtp = counts[(year, month_number, plan_index)]
            month = Month.of(year, month_number)
            if month < self.current:
                before = closed.get(month) or self.closed_months[str(month)]
                after, charges = record_late(before, platform)
                closed[month] = after
                late = add_late(late, month, platform, charges) if platform else late
                entries.append(UsageEntry(month, True, platform, smtp, 0, charges))
            else:
                usage = months.get(month) or self.months.get(str(month), MonthUsage(month))
                updated, charges = usage.record(self.plans[plan_index][1], platform, smtp)
                months[month] = updated
                included = updated.included - usage.included
                entries.append(UsageEntry(month, False, platform, smtp, included, charges))
        charged = Money(sum((e.amount for e in entries), Decimal(0)), self.currency)
        self._emails_recorded(
            effective_at=at,
            entries=tuple(entries),
            charged=charged,
            months=tuple(months.values()),
            closed_months=tuple(closed.values()),
            pending_late=late,
        )
        recorded_version = self.version
        self._update_sending(at)
        return recorded_version

    def _count_by_month(
        self, emails: Sequence[SentEmailLike]
    ) -> tuple[dict[tuple[int, int, int], list[int]], datetime]:
        """(year, month, index of the plan in force) -> [platform, custom_smtp], and
        the latest send time.

        The month is the one the send time falls in, in the account's time zone;
        a time before the account opened counts in the opening month. The loop
        runs once per email of the hot path, so it does the least per email:
        the clamp to the opening month is applied to the few keys afterwards.
        """
        tz = zone(self.timezone)
        one_plan = len(self.plans) == 1
        raw: dict[tuple[int, int, int], list[int]] = {}
        at = emails[0].sent_at
        for email in emails:
            sent_at = email.sent_at
            if sent_at.utcoffset() is None:
                raise NaiveDatetime()
            local = sent_at.astimezone(tz)
            key = (local.year, local.month, 0 if one_plan else self._plan_index_at(sent_at))
            count = raw.get(key)
            if count is None:
                count = raw[key] = [0, 0]
            count[email.route != "platform"] += 1
            if sent_at > at:  # noqa: PLR1730 (per email: no call)
                at = sent_at
        first = (self.first_month.year, self.first_month.month)
        counts: dict[tuple[int, int, int], list[int]] = {}
        for (year, month, plan_index), (platform, smtp) in raw.items():
            key = (*max((year, month), first), plan_index)
            count = counts.setdefault(key, [0, 0])
            count[0] += platform
            count[1] += smtp
        return counts, at

    @event("EmailsRecorded")
    def _emails_recorded(
        self,
        effective_at: datetime,
        entries: tuple[UsageEntry, ...],
        charged: Money,
        months: tuple[MonthUsage, ...],
        closed_months: tuple[ClosedMonth, ...],
        pending_late: tuple[LateUsage, ...],
    ) -> None:
        self.months.update({str(u.month): u for u in months})
        self.closed_months.update({str(c.month): c for c in closed_months})
        self.pending_late = pending_late
        self.debited = self.debited + charged

    # ------------------------------------------------------------------ sending status

    def _update_sending(self, at: datetime) -> None:
        can_send = self.can_send(max(Month.containing(at, self.timezone), self.current))
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

    def _plan_index_at(self, instant: datetime) -> int:
        """Which terms were in force at ``instant`` (the first plan for anything before opening)."""
        index = 0
        for position, (effective_at, _) in enumerate(self.plans):
            if effective_at > instant:
                break
            index = position
        return index

    # ------------------------------------------------------------------ periods

    def _open_month(self, month: Month, at: datetime) -> None:
        usage = self.months.get(str(month), MonthUsage(month))
        fee = Money.of(self.plan.monthly_fee, self.currency)
        self._month_opened(effective_at=at, usage=usage.with_fee(fee, self.plan), fee=fee)

    @event("MonthOpened")
    def _month_opened(self, effective_at: datetime, usage: MonthUsage, fee: Money) -> None:
        self.months[str(usage.month)] = usage
        self.debited = self.debited + fee

    def _has_nothing_left_to_bill(self, month: Month) -> bool:
        """A closed account gets documents only while it has something to bill."""
        if self.closed_at is None or month <= Month.containing(self.closed_at, self.timezone):
            return False
        return str(month) not in self.months and not self.pending_late

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
            if self._has_nothing_left_to_bill(month):
                break
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
            last_plan = usage.segments[-1].plan if usage.segments else self.plan
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

    # ------------------------------------------------------------------ closing

    def close(self, at: datetime) -> None:
        """Stop the subscription: no fee after the month of closing; usage is still billed."""
        self.check_open()
        self._closed(effective_at=check_aware(at))

    @event("Closed")
    def _closed(self, effective_at: datetime) -> None:
        self.closed_at = effective_at

    # ------------------------------------------------------------------ invariants

    def check_invariants(self) -> None:
        """The balance is credits minus debits, and no month is both open and documented."""
        if self.balance != self.credited - self.debited:
            raise LedgerError(f"{self.account_id}: balance != credits - debits")
        both = set(self.months) & set(self.closed_months)
        if both:
            raise LedgerError(f"{self.account_id}: months open and documented: {sorted(both)}")
