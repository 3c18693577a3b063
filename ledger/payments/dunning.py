"""An account's dunning state, derived from its payment facts.

``current`` -> ``past_due`` -> ``suspended`` -> ``current``:

- a document becomes **delinquent** when a collection attempt on it fails and
  will be retried (seed 002: card payments), or when a document the customer
  pays by transfer is still unpaid after its due date (seed 000: a postpay
  invoice is payable within two weeks; it is overdue from local midnight
  after its due date, in the account's time zone);
- a delinquent document is **suspending** when nothing is left to try (a hard
  decline, or the policy's last attempt ended unpaid) or, paid by transfer,
  it is still unpaid ``suspend_after_days_overdue`` days after it became
  overdue;
- the state is ``suspended`` while any document is suspending, ``past_due``
  while any is delinquent, ``current`` when none is; and once suspended an
  account stays suspended until *everything* delinquent is paid (paying the
  document that suspended it while another is past due does not half-reinstate
  it): ``suspended`` never steps back to ``past_due``.

A document stops being delinquent when it is paid in full, or replaced (its
replacement is collected from attempt 1). A partial payment keeps it
delinquent. :func:`step` is the one transition function: every change of
state comes with its reason and the document that caused it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from ledger.money import Money
from ledger.payments.policy import DunningPolicy
from ledger.payments.receivables import Receivable
from ledger.payments.schedule import AttemptEnded
from ledger.periods import check_aware, zone

DunningState = Literal["current", "past_due", "suspended"]
Level = Literal["past_due", "suspending"]


@dataclass(frozen=True, slots=True)
class AttemptUnpaid:
    """A collection attempt ended and left ``amount_due`` to pay."""

    ended: AttemptEnded
    amount_due: Money

    @property
    def reference(self) -> str:
        return self.ended.reference

    @property
    def at(self) -> datetime:
        return self.ended.at


@dataclass(frozen=True, slots=True)
class BecameOverdue:
    reference: str
    at: datetime
    due_on: date
    amount_due: Money


@dataclass(frozen=True, slots=True)
class LongOverdue:
    reference: str
    at: datetime
    due_on: date
    days: int
    amount_due: Money


@dataclass(frozen=True, slots=True)
class Settled:
    reference: str
    at: datetime
    how: Literal["paid", "replaced"]


PaymentFact = AttemptUnpaid | BecameOverdue | LongOverdue | Settled


@dataclass(frozen=True, slots=True)
class Transition:
    from_state: DunningState
    to_state: DunningState
    at: datetime
    reference: str
    reason: str


@dataclass(frozen=True, slots=True)
class Dunning:
    state: DunningState = "current"
    delinquent: tuple[tuple[str, Level], ...] = ()

    def level(self, reference: str) -> Level | None:
        return dict(self.delinquent).get(reference)


def step(dunning: Dunning, fact: PaymentFact) -> tuple[Dunning, Transition | None]:
    """The state after ``fact``, and the transition it made (None: the state stays)."""
    levels = dict(dunning.delinquent)
    if isinstance(fact, Settled):
        levels.pop(fact.reference, None)
    else:
        level = _level(fact)
        if level is not None and (level == "suspending" or fact.reference not in levels):
            levels[fact.reference] = level
    if any(v == "suspending" for v in levels.values()) or (dunning.state == "suspended" and levels):
        state: DunningState = "suspended"
    else:
        state = "past_due" if levels else "current"
    after = Dunning(state, tuple(sorted(levels.items())))
    if state == dunning.state:
        return after, None
    return after, Transition(dunning.state, state, fact.at, fact.reference, _reason(fact, state))


def _level(fact: AttemptUnpaid | BecameOverdue | LongOverdue) -> Level | None:
    """What the fact makes of its document; None: nothing (a partial payment that
    leaves a retry pending is not a failure, so it makes nothing past due)."""
    if isinstance(fact, AttemptUnpaid):
        if fact.ended.final is not None:
            return "suspending"
        return "past_due" if fact.ended.outcome == "failed" else None
    return "past_due" if isinstance(fact, BecameOverdue) else "suspending"


def _reason(fact: PaymentFact, state: DunningState) -> str:
    match fact:
        case AttemptUnpaid(ended=ended, amount_due=due):
            what = f"attempt {ended.attempt} to collect {due} for {ended.reference}"
            if ended.final == "hard_decline":
                return f"{what} was declined, not to be retried: {ended.reason}"
            if ended.final == "last_attempt":
                return f"{what}, the last, ended unpaid: {ended.reason}"
            return f"{what} failed: {ended.reason}; next attempt {ended.next_attempt_at}"
        case BecameOverdue(reference=ref, due_on=due_on, amount_due=due):
            return f"{ref} ({due} due) unpaid past its due date {due_on}"
        case LongOverdue(reference=ref, due_on=due_on, days=days, amount_due=due):
            return f"{ref} ({due} due) unpaid {days} days after its due date {due_on}"
        case Settled(reference=ref, how=how):
            return f"{ref} {how}: nothing is past due" if state == "current" else f"{ref} {how}"


def overdue_at(receivable: Receivable, tz: str) -> datetime:
    """Local midnight after the due date: the whole due date is the customer's to pay."""
    day = receivable.due_on + timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=zone(tz)).astimezone(UTC)


def long_overdue_at(receivable: Receivable, policy: DunningPolicy, tz: str) -> datetime:
    day = receivable.due_on + timedelta(days=1 + policy.suspend_after_days_overdue)
    return datetime.combine(day, time(), tzinfo=zone(tz)).astimezone(UTC)


def overdue_facts(
    receivables: Iterable[Receivable],
    dunning: Dunning,
    policy: DunningPolicy,
    tz: str,
    now: datetime,
) -> list[BecameOverdue | LongOverdue]:
    """What the due dates made true by ``now`` and is not recorded yet, oldest first.

    Only documents paid by transfer: a card-paid document's lateness is its
    collection's business (no notice before an attempt, seed 002).
    """
    check_aware(now)
    facts: list[BecameOverdue | LongOverdue] = []
    for receivable in receivables:
        if receivable.settled_by != "transfer" or not receivable.payable:
            continue
        level = dunning.level(receivable.reference)
        late = overdue_at(receivable, tz)
        if level is None and late <= now:
            facts.append(
                BecameOverdue(receivable.reference, late, receivable.due_on, receivable.amount_due)
            )
        very_late = long_overdue_at(receivable, policy, tz)
        if level != "suspending" and very_late <= now:
            facts.append(
                LongOverdue(
                    receivable.reference,
                    very_late,
                    receivable.due_on,
                    policy.suspend_after_days_overdue,
                    receivable.amount_due,
                )
            )
    return sorted(facts, key=lambda f: (f.at, f.reference))


def next_overdue_check_at(
    receivables: Iterable[Receivable], dunning: Dunning, policy: DunningPolicy, tz: str
) -> datetime | None:
    """The next instant :func:`overdue_facts` will have something: the idle scan's bound."""
    instants: list[datetime] = []
    for receivable in receivables:
        if receivable.settled_by != "transfer" or not receivable.payable:
            continue
        level = dunning.level(receivable.reference)
        if level is None:
            instants.append(overdue_at(receivable, tz))
        elif level == "past_due":
            instants.append(long_overdue_at(receivable, policy, tz))
    return min(instants, default=None)
