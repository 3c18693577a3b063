"""The collection schedule of a card-paid document: when the ledger asks for
the money, and when it asks again.

The ledger, not the payment bridge, owns the schedule, so it is replayable
from history. Attempt 1 is due when the document becomes collectable (a
contacts account's proforma, at its issue). Each request is recorded before
it is published (outbox), which moves the collection from ``scheduled`` to
``requested``: :func:`due_for_collection` only ever returns ``scheduled``
attempts, so no request is made twice. An attempt ends with its answer:

- it failed and may be retried: attempt ``n + 1`` is due
  ``policy.retry_after_days[n - 1]`` days after the **first** failure, at the
  same local wall-clock time in the account's time zone (a day is a calendar
  day there, so a retry across a daylight-saving change keeps its clock time,
  and across a month end it is just the date ``days`` later). A wall time that
  a DST gap skips is read as the clock before the gap reads it (02:30 in a
  02:00->03:00 gap is 03:30 summer time); an ambiguous one is its first
  occurrence. An answer later than that time makes the retry due at once;
- it failed with ``retryable: false`` (a hard decline): no retry, the
  collection is ``declined``;
- the last attempt the policy allows failed: ``exhausted``;
- it was paid in part: the remainder is asked for at the next retry, on the
  same schedule (a partial payment is not a failure: it opens no notice);
- the document is paid, by this attempt or by any other route (a transfer,
  held credit): ``settled``, and a pending retry is cancelled.

A failure that answers no attempt awaiting an answer (a stale or duplicate
answer, one for an attempt already paid or superseded) changes nothing and is
:class:`Ignored` with the reason, so a late ``payment.failed`` never reopens
what a later ``payment.succeeded`` settled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from ledger.money import Money
from ledger.payments.policy import DunningPolicy
from ledger.payments.receivables import PaymentInvariantBroken
from ledger.periods import check_aware, zone

CollectionStatus = Literal[
    "scheduled", "requested", "settled", "declined", "exhausted", "cancelled"
]
#: Why no attempt follows: a hard decline, or the policy's last attempt ended unpaid.
FinalWhy = Literal["hard_decline", "last_attempt"]


@dataclass(frozen=True, slots=True)
class Collection:
    """One document's collection. ``attempt`` is the attempt scheduled or awaiting
    its answer; ``due_at`` when a ``scheduled`` attempt is to be requested;
    ``retries_from`` the instant the retry offsets count from (the first attempt
    that ended unpaid: a failure, or a partial payment)."""

    reference: str
    attempt: int
    status: CollectionStatus
    due_at: datetime | None
    retries_from: datetime | None = None
    request_id: str | None = None

    @property
    def pending(self) -> bool:
        """Still trying: an attempt is scheduled or awaits its answer."""
        return self.status in ("scheduled", "requested")


@dataclass(frozen=True, slots=True)
class CollectionRequest:
    """What ``collection.requested`` carries: the amount due *now* (a retry after a
    partial payment asks for the remainder only)."""

    request_id: str
    reference: str
    amount: Money
    attempt: int
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class Failure:
    request_id: str | None
    at: datetime
    reason: str
    retryable: bool = True


@dataclass(frozen=True, slots=True)
class AttemptEnded:
    """An attempt ended without paying the document in full."""

    reference: str
    attempt: int
    at: datetime
    outcome: Literal["failed", "partly_paid"]
    reason: str
    next_attempt_at: datetime | None
    final: FinalWhy | None
    collection: Collection


@dataclass(frozen=True, slots=True)
class Ignored:
    reference: str
    why: str


def request_id(reference: str, attempt: int) -> str:
    """Derived, not random: replaying the history gives the same id, and the
    payment bridge can dedupe a request it sees twice."""
    return f"{reference}/attempt-{attempt}"


def start_collection(reference: str, collectable_at: datetime) -> Collection:
    return Collection(reference, 1, "scheduled", check_aware(collectable_at))


def retry_at(first_failure: datetime, days: int, tz: str) -> datetime:
    """``days`` calendar days after the first failure, at its local wall-clock time."""
    local = check_aware(first_failure).astimezone(zone(tz))
    wall = datetime.combine(local.date() + timedelta(days=days), local.time(), tzinfo=zone(tz))
    return wall.astimezone(UTC)


def due_for_collection(
    collections: Iterable[Collection], amounts_due: Mapping[str, Money], now: datetime
) -> list[CollectionRequest]:
    """What must be requested at ``now``: each scheduled attempt that is due, once."""
    check_aware(now)
    requests: list[CollectionRequest] = []
    for collection in collections:
        if collection.status != "scheduled" or collection.due_at is None:
            continue
        if collection.due_at > now:
            continue
        amount = amounts_due[collection.reference]
        if amount.amount <= 0:
            raise PaymentInvariantBroken(
                f"{collection.reference}: collection scheduled with {amount} due"
            )
        requests.append(
            CollectionRequest(
                request_id(collection.reference, collection.attempt),
                collection.reference,
                amount,
                collection.attempt,
                now,
            )
        )
    return sorted(requests, key=lambda r: (r.requested_at, r.reference))


def next_collection_at(collections: Iterable[Collection]) -> datetime | None:
    """When the scheduler next has anything to request for this account (an idle
    scan reads this one instant instead of every collection)."""
    due = [c.due_at for c in collections if c.status == "scheduled" and c.due_at is not None]
    return min(due, default=None)


def mark_requested(collection: Collection, request: CollectionRequest) -> Collection:
    if (
        collection.status != "scheduled"
        or collection.attempt != request.attempt
        or collection.due_at is None
        or collection.due_at > request.requested_at
    ):
        raise PaymentInvariantBroken(
            f"{request.request_id}: not a due scheduled attempt ({collection.status})"
        )
    return replace(collection, status="requested", due_at=None, request_id=request.request_id)


def record_failure(
    collection: Collection, failure: Failure, policy: DunningPolicy, tz: str
) -> AttemptEnded | Ignored:
    """A ``payment.failed``. Without a ``request_id`` it answers the attempt awaiting
    an answer, if one does (the bridge may leave the optional field out)."""
    check_aware(failure.at)
    if collection.status != "requested":
        return Ignored(
            collection.reference, f"no attempt awaits an answer (collection {collection.status})"
        )
    if failure.request_id is not None and failure.request_id != collection.request_id:
        return Ignored(
            collection.reference,
            f"answers {failure.request_id}, not the attempt awaiting ({collection.request_id})",
        )
    return _end_attempt(
        collection, failure.at, policy, tz, "failed", failure.reason, retryable=failure.retryable
    )


def record_payment(
    collection: Collection,
    amount_due_after: Money,
    at: datetime,
    answers: str | None,
    policy: DunningPolicy | None,
    tz: str,
) -> Collection | AttemptEnded:
    """A payment of the document, ``amount_due_after`` left to pay. Only a payment
    naming the awaiting request (``answers``) ends that attempt: money by another
    route must not end an attempt whose answer is still coming. ``policy`` may be
    None for money that answers no request (held credit): nothing is scheduled."""
    check_aware(at)
    if amount_due_after.is_zero:
        return replace(collection, status="settled", due_at=None)
    if collection.status == "requested" and answers == collection.request_id:
        if policy is None:
            raise PaymentInvariantBroken(f"{answers}: an attempt ended with no policy to go on")
        reason = f"paid in part, {amount_due_after} left"
        return _end_attempt(collection, at, policy, tz, "partly_paid", reason, retryable=True)
    return collection


def cancel_collection(collection: Collection) -> Collection:
    """The document was replaced (a plan change): its replacement is collected instead."""
    return replace(collection, status="cancelled", due_at=None)


def _end_attempt(
    collection: Collection,
    at: datetime,
    policy: DunningPolicy,
    tz: str,
    outcome: Literal["failed", "partly_paid"],
    reason: str,
    *,
    retryable: bool,
) -> AttemptEnded:
    first = collection.retries_from or at
    final: FinalWhy | None = None
    if not retryable:
        final = "hard_decline"
        after = replace(collection, status="declined", retries_from=first)
    elif collection.attempt >= policy.attempts:
        final = "last_attempt"
        after = replace(collection, status="exhausted", retries_from=first)
    else:
        due = max(retry_at(first, policy.retry_after_days[collection.attempt - 1], tz), at)
        after = Collection(collection.reference, collection.attempt + 1, "scheduled", due, first)
    return AttemptEnded(
        reference=collection.reference,
        attempt=collection.attempt,
        at=at,
        outcome=outcome,
        reason=reason,
        next_attempt_at=after.due_at,
        final=final,
        collection=after,
    )
