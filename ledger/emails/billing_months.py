"""The billing months of an email account, and what its billing reads of them.

:class:`ledger.emails.account.Account` inherits these queries: they read its
state (the balance, the terms in force, which month an email is billed in) and
never record, so the aggregate module holds its commands and events. The rules
they apply are :mod:`ledger.emails.pricing`'s and :mod:`ledger.emails.usage`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from ledger.documents import PaymentMode
from ledger.email_counts import MonthCount, SentEmailLike, count_by_month, count_runs_by_month
from ledger.emails.pricing import next_email_price
from ledger.emails.usage import ClosedMonth, LateUsage, MonthUsage, terms_after_closing
from ledger.errors import AccountClosed, InvariantBroken
from ledger.money import Money
from ledger.payments.dunning import DunningState
from ledger.periods import Month
from ledger.plans import EmailPlan

#: A calendar month as a dictionary key: cheaper to build per send day than a Month.
YearMonth = tuple[int, int]


class BillingMonths:
    """Queries over the aggregate state below (set by its ``Opened`` event)."""

    account_id: str
    plan: EmailPlan
    plans: list[tuple[datetime, EmailPlan]]
    payment_mode: PaymentMode
    currency: str
    timezone: str
    first_month: Month
    current: Month
    months: dict[str, MonthUsage]
    closed_months: dict[str, ClosedMonth]
    pending_late: tuple[LateUsage, ...]
    credited: Money
    debited: Money
    closed_at: datetime | None
    dunning_state: DunningState

    @property
    def balance(self) -> Money:
        return self.credited - self.debited

    def volume(self, month: Month) -> int:
        usage = self.months.get(str(month))
        return usage.platform if usage else 0

    def can_send(self, at_month: Month) -> bool:
        """A suspended account may not send, whatever it pays by; a prepaid one while
        its balance covers the next email."""
        if self.dunning_state == "suspended":
            return False
        if self.payment_mode == "postpaid":
            return True
        price = next_email_price(self._terms(at_month, self.plan), self.volume(at_month))
        return self.balance.amount >= price

    def check_open(self) -> None:
        if self.closed_at is not None:
            raise AccountClosed(self.account_id)

    def _group_by_month(self, emails: Sequence[SentEmailLike]) -> dict[YearMonth, MonthCount]:
        """(year, month) -> the batch's emails of that month, counted: in runs of one
        plan in arrival order after a plan change, as one-at-a-time recording would."""
        if len(self.plans) > 1:
            return count_runs_by_month(emails, self.timezone, self._month_of, self._plan_index_at)
        return count_by_month(emails, self.timezone, self._month_of)

    def _month_of(self, day: date) -> YearMonth:
        """The month a local send day is billed in: a day before the opening counts in
        the opening month."""
        return max((day.year, day.month), (self.first_month.year, self.first_month.month))

    def _plan_index_at(self, instant: datetime) -> int:
        """Which terms were in force at ``instant`` (the first plan for anything before opening)."""
        index = 0
        for position, (effective_at, _) in enumerate(self.plans):
            if effective_at > instant:
                break
            index = position
        return index

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

    # ------------------------------------------------------------------ invariants

    def check_invariants(self) -> None:
        """What the events can only break through a bug or a corrupted stream.

        The balance is credits minus debits by definition, so that is not checked;
        what is: every credit was positive, every amount is in the account's
        currency, a month is open or documented (never both, never open before
        the current one), and each open month's emails are its segments' positions.
        """
        for amount in (self.credited, self.debited):
            if amount.currency != self.currency:
                raise InvariantBroken(
                    f"{self.account_id}: {amount} in an account in {self.currency}"
                )
        if self.credited.amount < 0:
            raise InvariantBroken(f"{self.account_id}: negative credit {self.credited}")
        both = set(self.months) & set(self.closed_months)
        if both:
            raise InvariantBroken(f"{self.account_id}: months open and documented: {sorted(both)}")
        for usage in self.months.values():
            if usage.month < self.current:
                raise InvariantBroken(f"{self.account_id}: {usage.month} open after it closed")
            usage.check_positions()
