"""Payment-failure notices: what the customer panel's pop-up shows (seed 002).

**No notice exists before a collection attempt failed**: a proforma issued and
not attempted yet, or a retry not due yet, shows none. The one exception is
``overdue``, for a document the customer pays by transfer (a postpay invoice
past its due date, seed 000): there it is the due date that counts. The
rules, each a consequence of one payment fact (:func:`notice_changes`):

- ``payment_failed``: opened by a failed collection attempt on a document;
  each later failed attempt on it updates the same notice (attempt, reason,
  next attempt, amount due), and a partial payment updates its amount due;
- ``overdue``: opened when a transfer-paid document passes its due date;
- ``suspended``: opened when the account becomes suspended, naming the
  document that suspended it;
- a payment that settles a document (or its replacement) resolves that
  document's ``payment_failed`` and ``overdue`` notices; the account's return
  to ``current`` resolves its ``suspended`` notice.

One notice per document and kind (``notice_id`` = reference + kind), so a
notice, once resolved, is never reopened: a paid document cannot fail again,
and a ``payment.failed`` that arrives after the payment that settled it is
ignored by the schedule before it gets here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from ledger.money import Money
from ledger.payments.dunning import (
    AttemptUnpaid,
    BecameOverdue,
    LongOverdue,
    PaymentFact,
    Settled,
    Transition,
)
from ledger.payments.receivables import PaymentInvariantBroken

NoticeKind = Literal["payment_failed", "overdue", "suspended"]
ChangeKind = Literal["opened", "updated", "resolved"]


@dataclass(frozen=True, slots=True)
class Notice:
    notice_id: str
    kind: NoticeKind
    reference: str
    amount_due: Money
    reason: str
    attempt: int | None
    next_attempt_at: datetime | None
    opened_at: datetime
    resolved_at: datetime | None = None

    @property
    def state(self) -> Literal["open", "resolved"]:
        return "open" if self.resolved_at is None else "resolved"


@dataclass(frozen=True, slots=True)
class NoticeChange:
    """``opened`` and ``updated`` go out as ``notice.opened`` (the panel upserts by
    ``notice_id``), ``resolved`` as ``notice.resolved``."""

    change: ChangeKind
    notice: Notice


def notice_id(reference: str, kind: NoticeKind) -> str:
    return f"{reference}/{kind}"


def notice_changes(
    notices: Sequence[Notice], fact: PaymentFact, transition: Transition | None
) -> list[NoticeChange]:
    """What ``fact`` (and the dunning ``transition`` it made) does to the notices."""
    open_by_id = {n.notice_id: n for n in notices if n.state == "open"}
    changes: list[NoticeChange] = []
    match fact:
        case AttemptUnpaid(ended=ended, amount_due=due):
            current = open_by_id.get(notice_id(ended.reference, "payment_failed"))
            if ended.outcome == "failed":
                notice = Notice(
                    notice_id(ended.reference, "payment_failed"),
                    "payment_failed",
                    ended.reference,
                    due,
                    ended.reason,
                    ended.attempt,
                    ended.next_attempt_at,
                    current.opened_at if current else ended.at,
                )
                changes.append(NoticeChange("updated" if current else "opened", notice))
            elif current is not None:
                notice = replace(current, amount_due=due, next_attempt_at=ended.next_attempt_at)
                changes.append(NoticeChange("updated", notice))
        case BecameOverdue(reference=ref, at=at, amount_due=due, due_on=due_on):
            if notice_id(ref, "overdue") not in open_by_id:
                reason = f"unpaid past its due date {due_on}"
                notice = Notice(
                    notice_id(ref, "overdue"), "overdue", ref, due, reason, None, None, at
                )
                changes.append(NoticeChange("opened", notice))
        case Settled(reference=ref, at=at):
            for kind in ("payment_failed", "overdue"):
                settled = open_by_id.get(notice_id(ref, kind))
                if settled is not None:
                    changes.append(NoticeChange("resolved", replace(settled, resolved_at=at)))
        case LongOverdue():
            pass  # its effect is the suspension, below
    if transition is not None:
        changes.extend(_after_transition(open_by_id, fact, transition))
    return changes


def _after_transition(
    open_by_id: dict[str, Notice], fact: PaymentFact, transition: Transition
) -> list[NoticeChange]:
    if transition.to_state == "suspended":
        if isinstance(fact, Settled):
            raise PaymentInvariantBroken("a payment cannot suspend an account")
        attempt = fact.ended.attempt if isinstance(fact, AttemptUnpaid) else None
        notice = Notice(
            notice_id(transition.reference, "suspended"),
            "suspended",
            transition.reference,
            fact.amount_due,
            transition.reason,
            attempt,
            None,
            transition.at,
        )
        return [NoticeChange("opened", notice)]
    if transition.to_state == "current":
        return [
            NoticeChange("resolved", replace(n, resolved_at=transition.at))
            for n in open_by_id.values()
            if n.kind == "suspended"
        ]
    return []


def apply_changes(notices: Sequence[Notice], changes: Sequence[NoticeChange]) -> tuple[Notice, ...]:
    """The account's notices after ``changes``, in the order they were first opened."""
    by_id = {n.notice_id: n for n in notices}
    for change in changes:
        by_id[change.notice.notice_id] = change.notice
    return tuple(by_id.values())


def check_no_notice_before_failure(
    notice: Notice, unpaid_attempts_at: Sequence[datetime], overdue_at: datetime | None
) -> None:
    """Seed 002's rule, as an invariant a test or a replay can check: a notice
    is opened only at or after a collection attempt on its document ended unpaid
    (failed, or the last one paid only in part), or (``overdue``, or a suspension
    for a transfer-paid document) at or after its due date passed."""
    after_failure = any(at <= notice.opened_at for at in unpaid_attempts_at)
    after_due = overdue_at is not None and overdue_at <= notice.opened_at
    allowed = after_due if notice.kind == "overdue" else after_failure or after_due
    if not allowed:
        raise PaymentInvariantBroken(
            f"{notice.notice_id} opened at {notice.opened_at} before any failed attempt"
        )
