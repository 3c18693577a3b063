"""The Account aggregate: one customer's billing history.

Public methods decide (check, price, compute); the private ``@event`` methods
only record the decision, because their bodies re-run on every replay and a
pricing rule inside one would silently rewrite the past.

The balance is credits minus debits, both kept exactly (unrounded):
credits are purchased credit (and later, payments); debits are the monthly fee
when a month opens, each email's charge as sent (recorded per batch and
month, the same whatever the batches), and at the close the document's
``total - accrued`` (rounding, tax and the volume true-up). A prepaid account
may send while its balance covers the next email; a postpay account is never
blocked and a negative balance is what it owes.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar

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


E = TypeVar("E", bound=SentEmailLike)


@dataclass(slots=True)
class _MonthCount:
    """A batch's emails of one month: ``[plan index, platform, custom SMTP]`` runs in
    arrival order, and the latest send time (the event's business time)."""

    runs: list[list[int]]
    at: datetime


@functools.lru_cache(maxsize=256)
def terms_after_closing(plan: EmailPlan) -> EmailPlan:
    """The terms of a month after a closed account's last paid month: no fee was
    charged for it, so no emails are included; every platform email pays the
    plan's per-email price from the first one (the contacts model's rule too)."""
    return plan.model_copy(
        update={"included_emails": 0, "name": f"{plan.name}, after closing (no emails included)"}
    )


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
        MonthSkipped: ClassVar[type[Aggregate.Event]]
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
        price = next_email_price(self._terms(at_month, self.plan), self.volume(at_month))
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
        if len(months) == 1:  # the common case: no second pass over the emails
            return [(versions[0], emails)]
        return list(zip(versions, self._split_by_month(emails, months), strict=True))

    def _record_month(self, month: Month, group: _MonthCount) -> None:
        late = self.pending_late
        months: tuple[MonthUsage, ...] = ()
        closed: tuple[ClosedMonth, ...] = ()
        if month < self.current:
            platform = sum(run[1] for run in group.runs)
            smtp = sum(run[2] for run in group.runs)
            after, charges = record_late(self.closed_months[str(month)], platform)
            closed = (after,)
            late = add_late(late, month, platform, charges) if platform else late
            entries = [UsageEntry(month, True, platform, smtp, 0, charges)]
        else:
            usage = self.months.get(str(month), MonthUsage(month))
            entries = []
            for plan_index, platform, smtp in group.runs:
                terms = self._terms(month, self.plans[plan_index][1])
                updated, charges = usage.record(terms, platform, smtp)
                included = updated.included - usage.included
                entries.append(UsageEntry(month, False, platform, smtp, included, charges))
                usage = updated
            months = (usage,)
        charged = Money(sum((e.amount for e in entries), Decimal(0)), self.currency)
        self._emails_recorded(
            effective_at=group.at,
            entries=tuple(entries),
            charged=charged,
            months=months,
            closed_months=closed,
            pending_late=late,
        )

    def _group_by_month(
        self, emails: Sequence[SentEmailLike]
    ) -> dict[tuple[int, int], _MonthCount]:
        """(year, month) -> the batch's emails of that month, counted.

        The month is the one the send time falls in, in the account's time zone;
        a time before the account opened counts in the opening month. The loop
        runs once per email of the hot path, so it does the least per email:
        with one plan, counts per month (the clamp to the opening month applied
        to the few keys afterwards); after a plan change, runs of one plan in
        arrival order, as one-at-a-time recording would segment them.
        """
        tz = zone(self.timezone)
        first = (self.first_month.year, self.first_month.month)
        groups: dict[tuple[int, int], _MonthCount] = {}
        if len(self.plans) > 1:
            for email in emails:
                sent_at = email.sent_at
                if sent_at.utcoffset() is None:
                    raise NaiveDatetime()
                local = sent_at.astimezone(tz)
                key = max((local.year, local.month), first)
                index = self._plan_index_at(sent_at)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _MonthCount([[index, 0, 0]], sent_at)
                run = group.runs[-1]
                if run[0] != index:
                    run = [index, 0, 0]
                    group.runs.append(run)
                run[1 + (email.route != "platform")] += 1
                if sent_at > group.at:  # noqa: PLR1730 (per email: no call)
                    group.at = sent_at
            return groups
        raw: dict[tuple[int, int], list[Any]] = {}
        for email in emails:
            sent_at = email.sent_at
            if sent_at.utcoffset() is None:
                raise NaiveDatetime()
            local = sent_at.astimezone(tz)
            key = (local.year, local.month)
            count = raw.get(key)
            if count is None:
                count = raw[key] = [0, 0, sent_at]
            count[email.route != "platform"] += 1
            if sent_at > count[2]:  # noqa: PLR1730 (per email: no call)
                count[2] = sent_at
        for key, (platform, smtp, at) in raw.items():
            clamped = max(key, first)
            group = groups.get(clamped)
            if group is None:
                groups[clamped] = _MonthCount([[0, platform, smtp]], at)
            else:
                group.runs[0][1] += platform
                group.runs[0][2] += smtp
                group.at = max(group.at, at)
        return groups

    def _split_by_month(
        self, emails: Sequence[E], months: list[tuple[int, int]]
    ) -> list[Sequence[E]]:
        """The emails of each month, in ``months`` order (only for a batch spanning months)."""
        tz = zone(self.timezone)
        first = (self.first_month.year, self.first_month.month)
        parts: dict[tuple[int, int], list[E]] = {key: [] for key in months}
        for email in emails:
            local = email.sent_at.astimezone(tz)
            parts[max((local.year, local.month), first)].append(email)
        return [parts[key] for key in months]

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

    def _after_closing(self, month: Month) -> bool:
        """Whether ``month`` is after the last month a closed account paid a fee for."""
        return self.closed_at is not None and month > Month.containing(
            self.closed_at, self.timezone
        )

    def _terms(self, month: Month, plan: EmailPlan) -> EmailPlan:
        """The terms emails of ``month`` are priced with, ``plan`` being in force when sent."""
        return terms_after_closing(plan) if self._after_closing(month) else plan

    def _has_nothing_to_bill(self, month: Month) -> bool:
        """A month after closing holding no usage gets no document (nor does a later one,
        unless it holds usage), so a closed account's documents stop."""
        return (
            self._after_closing(month) and str(month) not in self.months and not self.pending_late
        )

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

    @event("MonthSkipped")
    def _month_skipped(self, effective_at: datetime, closed: ClosedMonth) -> None:
        self.closed_months[str(closed.month)] = closed
        self.current = closed.month.next()

    # ------------------------------------------------------------------ closing

    def close(self, at: datetime) -> None:
        """Stop the subscription: no fee after the month of closing; usage is still billed,
        in a later month without included emails (:func:`terms_after_closing`)."""
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
