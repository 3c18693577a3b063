"""What an account chases of the money it is owed: its collections, its dunning state
and its open payment-failure notices.

Both account aggregates inherit :class:`PaymentsChased` (through
:class:`ledger.payments.held.PaymentsHeld`'s state). Its public methods decide
with the pure rules (:mod:`ledger.payments.schedule`, :mod:`ledger.payments.dunning`,
:mod:`ledger.payments.notices`) in the order docs/payments.md gives, and the
aggregate records each decision as one ``DunningChanged`` (the state after,
the transitions, the notice changes, the collections that moved) or one
``CollectionRequested`` per due attempt. Event bodies only assign what was
decided (:meth:`PaymentsChased._chase_recorded`, :meth:`PaymentsChased._requested`).

The policy is the catalogue's (``catalogue.dunning``): the caller passes it to
each decision, and the events carry what it decided (a retry's time), so an
edited policy never rewrites a schedule already recorded.

A contacts proforma's collection starts when the close that issued it is done
and held credit did not pay it (:meth:`PaymentsChased._start_collections`:
attempt 1 due at issue, recorded as a ``DunningChanged``), so history stored
before collections were events holds none, replayed or from a snapshot alike.
A proforma paid in full before its first request ends its collection with
its ``ProformaPaid`` (:meth:`PaymentsChased._collection_ended`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ledger.errors import InvariantBroken
from ledger.payments.allocation import Settlement
from ledger.payments.dunning import (
    AttemptUnpaid,
    Dunning,
    DunningState,
    Level,
    PaymentFact,
    Settled,
    Transition,
    next_overdue_check_at,
    overdue_facts,
    step,
)
from ledger.payments.held import PaymentReport, PaymentsHeld
from ledger.payments.notices import Notice, NoticeChange, apply_changes, notice_changes
from ledger.payments.policy import DunningPolicy
from ledger.payments.schedule import (
    AttemptEnded,
    Collection,
    CollectionRequest,
    Failure,
    due_for_collection,
    mark_requested,
    next_collection_at,
    record_failure,
    record_payment,
    start_collection,
)
from ledger.periods import check_aware

#: A collection in one of these states is over: it is not kept in the account's state.
ENDED = ("settled", "cancelled")


class MissingPolicy(InvariantBroken):
    """The catalogue has no ``[dunning]`` policy: nothing can be scheduled. A setup
    error that stops the process (``ledger serve`` refuses to start without one)."""


def chased(collection: Collection) -> bool:
    """Asked for at least once. A document paid before its first request was never
    chased: its collection ends with the document (``ProformaPaid``), unrecorded here."""
    return collection.status != "scheduled" or collection.attempt > 1


def require_policy(policy: DunningPolicy | None) -> DunningPolicy:
    if policy is None:
        raise MissingPolicy("the plan catalogue has no [dunning] policy (plans/dunning.toml)")
    return policy


@dataclass
class Chase:
    """The chase state while one decision is made: the facts applied one by one."""

    dunning: Dunning
    notices: tuple[Notice, ...]
    collections: dict[str, Collection] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    changes: list[NoticeChange] = field(default_factory=list)
    moved_dunning: bool = False

    def apply(self, fact: PaymentFact) -> None:
        after, transition = step(self.dunning, fact)
        changes = notice_changes(self.notices, fact, transition)
        self.moved_dunning = self.moved_dunning or after != self.dunning
        self.dunning = after
        self.notices = apply_changes(self.notices, changes)
        self.changes.extend(changes)
        if transition is not None:
            self.transitions.append(transition)

    def move(self, collection: Collection) -> None:
        self.collections[collection.reference] = collection

    @property
    def changed(self) -> bool:
        return bool(self.moved_dunning or self.changes or self.collections)


class PaymentsChased(PaymentsHeld):
    """Decisions over the chase state below (set by ``Opened``; upcast for older
    snapshots by :meth:`upcast_v2_v3`)."""

    timezone: str
    #: Collections still pending or unpaid (declined, exhausted), by reference.
    collections: dict[str, Collection]
    dunning_state: DunningState
    #: Delinquent documents and their level (``past_due`` | ``suspending``).
    delinquent: dict[str, Level]
    #: Open notices by notice id (a resolved one is never reopened: it is dropped).
    notices: dict[str, Notice]
    _payment_failed: Callable[..., None]
    _dunning_changed: Callable[..., None]
    _collection_requested: Callable[..., None]

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        """A snapshot from before collections and dunning (class version 2): nothing
        chased yet."""
        state.setdefault("collections", {})
        state.setdefault("dunning_state", "current")
        state.setdefault("delinquent", {})
        state.setdefault("notices", {})

    def _chase_initial_state(self) -> None:
        self.collections = {}
        self.dunning_state = "current"
        self.delinquent = {}
        self.notices = {}

    @property
    def dunning(self) -> Dunning:
        return Dunning(self.dunning_state, tuple(sorted(self.delinquent.items())))

    @property
    def suspended(self) -> bool:
        return self.dunning_state == "suspended"

    def next_chase_at(self, policy: DunningPolicy) -> datetime | None:
        """When the scheduler next has anything to do for this account: a collection
        attempt due, or a transfer-paid document becoming (long) overdue."""
        instants = [
            next_collection_at(self.collections.values()),
            next_overdue_check_at(self.receivables.values(), self.dunning, policy, self.timezone),
        ]
        return min((i for i in instants if i is not None), default=None)

    # ------------------------------------------------------------------ decisions

    def record_payment_failure(
        self, report: PaymentReport, reason: str, retryable: bool, policy: DunningPolicy
    ) -> int:
        """A failed attempt, recorded as the fact it is (``PaymentFailed``); what it
        does to the collection it answers, to dunning and to the notices follows as
        a ``DunningChanged``. Returns the fact's version (what the dedupe key points
        at)."""
        self._payment_failed(**report.event_fields(), reason=reason, retryable=retryable)
        version = self.version
        self._chase_failure(report, reason, retryable, policy)
        return version

    def apply_held_credit(self, at: datetime) -> Settlement | None:
        """Held credit onto documents issued since; what it settles is chased no more."""
        settlement = super().apply_held_credit(at)
        if settlement is not None:
            self._chase_settlement(settlement, at, None, None)
        return settlement

    def _chase(self) -> Chase:
        return Chase(self.dunning, tuple(self.notices.values()))

    def _chase_settlement(
        self,
        settlement: Settlement,
        at: datetime,
        report: PaymentReport | None,
        policy: DunningPolicy | None,
    ) -> None:
        """What a recorded settlement does to the collections and dunning: each
        document it paid into is a payment for its collection (only the document
        the payment named answers its request), each it paid in full is
        ``Settled``. Recorded as one ``DunningChanged`` when anything moved (a
        collection never requested that the payment settled does not count:
        :func:`chased`)."""
        chase = self._chase()
        references = list(dict.fromkeys(a.reference for a in settlement.allocations))
        for reference in references:
            collection = self.collections.get(reference)
            if collection is None:
                continue
            answers = None
            if report is not None and report.reference == reference:
                answers = report.request_id
            due = self.receivables[reference].amount_due
            after = record_payment(collection, due, at, answers, policy, self.timezone)
            if isinstance(after, AttemptEnded):
                chase.move(after.collection)
                chase.apply(AttemptUnpaid(after, due))
            elif after != collection and (after.status != "settled" or chased(collection)):
                chase.move(after)
        for reference in settlement.paid:
            chase.apply(Settled(reference, at, "paid"))
        self._record_chase(chase, at)

    def _chase_replacement(self, replaced: str, at: datetime, cancelled: Collection | None) -> None:
        """A replaced proforma is no longer chased: its replacement is collected from
        attempt 1 (the replacement's event dropped its collection, ``cancelled``)."""
        chase = self._chase()
        if cancelled is not None:
            chase.move(cancelled)
        chase.apply(Settled(replaced, at, "replaced"))
        self._record_chase(chase, at)

    def _start_collections(self, references: Sequence[str], at: datetime) -> None:
        """Documents collected by card, issued at ``at`` and still payable once held
        credit was applied: attempt 1 of each is due at once."""
        chase = self._chase()
        for reference in references:
            if self.receivables[reference].payable:
                chase.move(start_collection(reference, at))
        self._record_chase(chase, at)

    def _chase_failure(
        self, report: PaymentReport, reason: str, retryable: bool, policy: DunningPolicy
    ) -> None:
        """A failed attempt: the collection it answers ends it (``Ignored`` when it
        answers none awaiting: a stale answer changes nothing)."""
        collection = self._answered_collection(report)
        if collection is None:
            return
        failure = Failure(report.request_id, report.at, reason, retryable)
        ended = record_failure(collection, failure, policy, self.timezone)
        if not isinstance(ended, AttemptEnded):
            return
        chase = self._chase()
        chase.move(ended.collection)
        chase.apply(AttemptUnpaid(ended, self.receivables[collection.reference].amount_due))
        self._record_chase(chase, report.at)

    def _answered_collection(self, report: PaymentReport) -> Collection | None:
        """The collection a bridge's answer is about: the document it names, else the
        one whose request it names."""
        if report.reference is not None and report.reference in self.collections:
            return self.collections[report.reference]
        if report.request_id is None:
            return None
        return next(
            (c for c in self.collections.values() if c.request_id == report.request_id), None
        )

    def collect(self, now: datetime, policy: DunningPolicy) -> list[CollectionRequest]:
        """The scheduler's visit: one ``CollectionRequested`` per due attempt (recorded
        before the outbox publishes it, so it is never requested twice), and the
        due-date facts of transfer-paid documents, each recorded as a
        ``DunningChanged`` dated when it became true. Returns the requests made."""
        check_aware(now)
        amounts = {r: self.receivables[r].amount_due for r in self.collections}
        requests = due_for_collection(self.collections.values(), amounts, now)
        for request in requests:
            mark_requested(self.collections[request.reference], request)  # checks it is due
            self._collection_requested(
                effective_at=request.requested_at,
                account_id=self.account_id,
                request_id=request.request_id,
                reference=request.reference,
                amount=request.amount,
                attempt=request.attempt,
            )
        receivables = self.receivables.values()
        for fact in overdue_facts(receivables, self.dunning, policy, self.timezone, now):
            chase = self._chase()
            chase.apply(fact)
            self._record_chase(chase, fact.at)
        return requests

    def _record_chase(self, chase: Chase, at: datetime) -> None:
        if not chase.changed:
            return
        self._dunning_changed(
            effective_at=at,
            account_id=self.account_id,
            state=chase.dunning.state,
            delinquent=dict(chase.dunning.delinquent),
            transitions=tuple(chase.transitions),
            notice_changes=tuple(chase.changes),
            collections=tuple(chase.collections.values()),
        )

    # ------------------------------------------------------------------ bookkeeping

    def _chase_recorded(
        self,
        state: DunningState,
        delinquent: dict[str, Level],
        notice_changes: Sequence[NoticeChange],
        collections: Sequence[Collection],
    ) -> None:
        """What a ``DunningChanged`` recorded (run by its body, on every replay)."""
        self.dunning_state = state
        self.delinquent = dict(delinquent)
        for collection in collections:
            if collection.status in ENDED:
                self.collections.pop(collection.reference, None)
            else:
                self.collections[collection.reference] = collection
        for change in notice_changes:
            if change.change == "resolved":
                self.notices.pop(change.notice.notice_id, None)
            else:
                self.notices[change.notice.notice_id] = change.notice

    def _requested(self, reference: str, request_id: str) -> None:
        """What a ``CollectionRequested`` recorded: the attempt awaits its answer."""
        collection = self.collections[reference]
        self.collections[reference] = replace(
            collection, status="requested", due_at=None, request_id=request_id
        )

    def _collection_ended(self, reference: str) -> None:
        """The document was paid in full: nothing is collected for it (a collection
        that was chased ended in the payment's ``DunningChanged`` already)."""
        self.collections.pop(reference, None)
