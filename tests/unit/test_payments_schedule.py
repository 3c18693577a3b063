"""The collection schedule (issue 11): retry arithmetic by hand across month
ends and daylight-saving changes, hard declines, partial payments, payments by
another route, and requests that are never made twice; the policy as data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from payments_builders import AMS, POLICY, REF
from pydantic import ValidationError

from ledger.money import Money
from ledger.payments.policy import DunningPolicy
from ledger.payments.receivables import PaymentInvariantBroken
from ledger.payments.schedule import (
    AttemptEnded,
    Collection,
    Failure,
    Ignored,
    due_for_collection,
    mark_requested,
    next_collection_at,
    record_failure,
    record_payment,
    retry_at,
    start_collection,
)
from ledger.plans import Catalogue, InvalidCatalogue

PLANS = Path(__file__).resolve().parents[2] / "plans"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def requested(collection: Collection, now: str, due: str = "119.00") -> Collection:
    (request,) = due_for_collection([collection], {REF: eur(due)}, utc(now))
    return mark_requested(collection, request)


def fail(collection: Collection, at: str, *, retryable: bool = True) -> AttemptEnded:
    ended = record_failure(
        collection, Failure(collection.request_id, utc(at), "card declined", retryable), POLICY, AMS
    )
    assert isinstance(ended, AttemptEnded)
    return ended


# ---------------------------------------------------------------- retry arithmetic


def test_retries_count_from_the_first_failure_across_a_month_end() -> None:
    # First failure Fri 30 Jan 2026 10:00 Amsterdam (09:00Z): retries on 31 Jan, 2, 4 and 6 Feb.
    collection = requested(start_collection(REF, utc("2026-01-30T09:00Z")), "2026-01-30T09:00Z")
    ended = fail(collection, "2026-01-30T10:00+01:00")
    assert ended.next_attempt_at == utc("2026-01-31T09:00Z")
    assert (ended.attempt, ended.final) == (1, None)
    collection = requested(ended.collection, "2026-01-31T09:00Z")
    assert collection.request_id == f"{REF}/attempt-2"
    ended = fail(collection, "2026-01-31T09:05Z")  # the answer's own time does not move retries
    assert ended.next_attempt_at == utc("2026-02-02T09:00Z")
    ended = fail(requested(ended.collection, "2026-02-02T09:00Z"), "2026-02-02T09:01Z")
    assert ended.next_attempt_at == utc("2026-02-04T09:00Z")
    ended = fail(requested(ended.collection, "2026-02-04T09:00Z"), "2026-02-04T09:01Z")
    assert ended.next_attempt_at == utc("2026-02-06T09:00Z")
    ended = fail(requested(ended.collection, "2026-02-06T09:00Z"), "2026-02-06T09:01Z")
    assert (ended.attempt, ended.final, ended.next_attempt_at) == (5, "last_attempt", None)
    assert ended.collection.status == "exhausted"


@pytest.mark.parametrize(
    ("first", "days", "tz", "expected"),
    [
        # Spring forward in Amsterdam (29 Mar 2026, 02:00 -> 03:00): 10:00 stays 10:00 local,
        # 09:00Z before the change and 08:00Z after it.
        ("2026-03-27T10:00+01:00", 1, AMS, "2026-03-28T09:00Z"),
        ("2026-03-27T10:00+01:00", 3, AMS, "2026-03-30T08:00Z"),
        # Fall back (25 Oct 2026, 03:00 -> 02:00): 10:00 CEST = 08:00Z, next day 10:00 CET = 09:00Z.
        ("2026-10-24T10:00+02:00", 1, AMS, "2026-10-25T09:00Z"),
        # A wall time the gap skips (02:30 on 29 Mar) reads as the clock before it: 03:30 CEST.
        ("2026-03-28T02:30+01:00", 1, AMS, "2026-03-29T01:30Z"),
        # An ambiguous one (02:30 on 25 Oct happens twice) is its first occurrence, CEST.
        ("2026-10-24T02:30+02:00", 1, AMS, "2026-10-25T00:30Z"),
        # New York, spring forward 8 Mar 2026: 21:00 EST (02:00Z next day) -> 21:00 EDT.
        ("2026-03-06T21:00-05:00", 3, "America/New_York", "2026-03-10T01:00Z"),
        # The local date counts, not the UTC one: 23:30 on 28 Feb in New York is 1 Mar in UTC.
        ("2026-02-28T23:30-05:00", 1, "America/New_York", "2026-03-02T04:30Z"),
        # Leap day and year end.
        ("2028-02-28T12:00Z", 1, "UTC", "2028-02-29T12:00Z"),
        ("2026-12-30T12:00Z", 5, "UTC", "2027-01-04T12:00Z"),
    ],
)
def test_a_retry_is_calendar_days_later_at_the_same_local_time(
    first: str, days: int, tz: str, expected: str
) -> None:
    assert retry_at(utc(first), days, tz) == utc(expected)


def test_an_answer_later_than_the_next_retry_makes_it_due_at_once() -> None:
    ended = fail(
        requested(start_collection(REF, utc("2026-01-30T09:00Z")), "2026-01-30T09:00Z"),
        "2026-01-30T09:00Z",
    )
    ended = fail(requested(ended.collection, "2026-01-31T09:00Z"), "2026-02-03T12:00Z")
    assert ended.next_attempt_at == utc("2026-02-03T12:00Z")  # retry 3 was due on 2 Feb


# ---------------------------------------------------------------- outcomes


def test_a_hard_decline_is_not_retried() -> None:
    collection = requested(start_collection(REF, utc("2026-01-15T08:00Z")), "2026-01-15T08:00Z")
    ended = fail(collection, "2026-01-15T08:01Z", retryable=False)
    assert (ended.final, ended.next_attempt_at, ended.collection.status) == (
        "hard_decline",
        None,
        "declined",
    )
    assert (
        due_for_collection([ended.collection], {REF: eur("119.00")}, utc("2027-01-01T00:00Z")) == []
    )


def test_with_no_retries_in_the_policy_the_first_failure_is_the_last() -> None:
    once = DunningPolicy(retry_after_days=(), suspend_after_days_overdue=14)
    collection = requested(start_collection(REF, utc("2026-01-15T08:00Z")), "2026-01-15T08:00Z")
    ended = record_failure(collection, Failure(None, utc("2026-01-15T08:01Z"), "x"), once, AMS)
    assert isinstance(ended, AttemptEnded)
    assert ended.final == "last_attempt"


def test_a_partial_payment_retries_only_the_remainder_on_the_same_schedule() -> None:
    ended = fail(
        requested(start_collection(REF, utc("2026-01-30T09:00Z")), "2026-01-30T09:00Z"),
        "2026-01-30T09:00Z",
    )
    collection = requested(ended.collection, "2026-01-31T09:00Z")
    partial = record_payment(
        collection, eur("69.00"), utc("2026-01-31T09:02Z"), collection.request_id, POLICY, AMS
    )
    assert isinstance(partial, AttemptEnded)
    assert (partial.outcome, partial.attempt, partial.next_attempt_at) == (
        "partly_paid",
        2,
        utc("2026-02-02T09:00Z"),
    )
    (request,) = due_for_collection(
        [partial.collection], {REF: eur("69.00")}, utc("2026-02-02T09:00Z")
    )
    assert (request.amount, request.attempt, request.request_id) == (
        eur("69.00"),
        3,
        f"{REF}/attempt-3",
    )


def test_a_payment_by_another_route_cancels_the_pending_retry() -> None:
    ended = fail(
        requested(start_collection(REF, utc("2026-01-30T09:00Z")), "2026-01-30T09:00Z"),
        "2026-01-30T09:00Z",
    )
    settled = record_payment(
        ended.collection, eur("0.00"), utc("2026-01-30T15:00Z"), None, POLICY, AMS
    )
    assert isinstance(settled, Collection)
    assert (settled.status, settled.due_at, settled.pending) == ("settled", None, False)
    assert due_for_collection([settled], {REF: eur("0.00")}, utc("2026-02-10T00:00Z")) == []


def test_a_partial_payment_by_another_route_leaves_the_awaited_attempt_alone() -> None:
    collection = requested(start_collection(REF, utc("2026-01-15T08:00Z")), "2026-01-15T08:00Z")
    after = record_payment(collection, eur("100.00"), utc("2026-01-15T08:30Z"), None, POLICY, AMS)
    assert after == collection


def test_a_failure_after_the_payment_of_a_later_attempt_is_ignored() -> None:
    first = requested(start_collection(REF, utc("2026-01-30T09:00Z")), "2026-01-30T09:00Z")
    ended = fail(first, "2026-01-30T09:00Z")
    second = requested(ended.collection, "2026-01-31T09:00Z")
    # A duplicate or late answer for attempt 1 while attempt 2 is awaited: not this attempt.
    stale = record_failure(
        second, Failure(first.request_id, utc("2026-01-31T09:10Z"), "late"), POLICY, AMS
    )
    assert stale == Ignored(
        REF, f"answers {REF}/attempt-1, not the attempt awaiting ({REF}/attempt-2)"
    )
    paid = record_payment(
        second, eur("0.00"), utc("2026-01-31T09:20Z"), second.request_id, POLICY, AMS
    )
    assert isinstance(paid, Collection)
    late = record_failure(
        paid, Failure(second.request_id, utc("2026-01-31T09:30Z"), "late"), POLICY, AMS
    )
    assert late == Ignored(REF, "no attempt awaits an answer (collection settled)")


def test_a_failure_without_request_id_answers_the_awaited_attempt() -> None:
    collection = requested(start_collection(REF, utc("2026-01-15T08:00Z")), "2026-01-15T08:00Z")
    ended = record_failure(
        collection, Failure(None, utc("2026-01-15T08:01Z"), "expired"), POLICY, AMS
    )
    assert isinstance(ended, AttemptEnded)
    assert ended.attempt == 1


# ---------------------------------------------------------------- what is due, once


def test_nothing_is_requested_before_it_is_due_and_nothing_twice() -> None:
    collection = start_collection(REF, utc("2026-01-15T08:00Z"))
    amounts = {REF: eur("119.00")}
    assert due_for_collection([collection], amounts, utc("2026-01-15T07:59:59Z")) == []
    assert next_collection_at([collection]) == utc("2026-01-15T08:00Z")
    (request,) = due_for_collection([collection], amounts, utc("2026-01-15T08:00Z"))
    assert (request.request_id, request.attempt, request.amount) == (
        f"{REF}/attempt-1",
        1,
        eur("119.00"),
    )
    after = mark_requested(collection, request)
    assert due_for_collection([after], amounts, utc("2026-01-16T00:00Z")) == []
    assert next_collection_at([after]) is None
    with pytest.raises(PaymentInvariantBroken):
        mark_requested(after, request)


def test_a_scheduled_collection_with_nothing_due_is_a_bug() -> None:
    with pytest.raises(PaymentInvariantBroken):
        due_for_collection(
            [start_collection(REF, utc("2026-01-15T08:00Z"))],
            {REF: eur("0")},
            utc("2026-01-16T00:00Z"),
        )


# ---------------------------------------------------------------- the policy is data


def test_the_shipped_catalogue_holds_the_dunning_policy() -> None:
    assert Catalogue.load(PLANS).dunning == POLICY
    assert POLICY.attempts == 5


@pytest.mark.parametrize("days", [[3, 1], [1, 1], [0, 2], [-1]])
def test_retry_days_must_be_positive_and_strictly_increasing(days: list[int]) -> None:
    with pytest.raises(ValidationError):
        DunningPolicy(retry_after_days=tuple(days), suspend_after_days_overdue=14)


def test_a_second_dunning_table_or_a_bad_one_is_refused_with_its_file(tmp_path: Path) -> None:
    table = "[dunning]\nretry_after_days = [1, 3]\nsuspend_after_days_overdue = 7\n"
    (tmp_path / "a.toml").write_text(table)
    assert Catalogue.load(tmp_path).dunning == DunningPolicy(
        retry_after_days=(1, 3), suspend_after_days_overdue=7
    )
    (tmp_path / "b.toml").write_text(table)
    with pytest.raises(InvalidCatalogue, match=r"b\.toml: a second \[dunning\] table"):
        Catalogue.load(tmp_path)
    (tmp_path / "b.toml").write_text("[dunning]\nretry_after_days = [1]\n")
    with pytest.raises(InvalidCatalogue, match=r"b\.toml"):
        Catalogue.load(tmp_path)


def test_a_catalogue_without_a_dunning_table_has_no_policy(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text((PLANS / "email.toml").read_text())
    assert Catalogue.load(tmp_path).dunning is None
