"""A contacts account's proformas collected by card: requests, failures, retries,
dunning and notices recorded by the aggregate (docs/payments.md).

By hand: contacts-basic, no billable contact, tax 0, time zone UTC, opened
2027-01-15 10:00Z; the first proforma PF-acc-7-0001 is 19.00 EUR, issued at the
close of 16:00Z and collected from then on (attempt 1 due at issue).
The policy retries 1, 3, 5 and 7 days after the first failure, at its clock time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from contacts_builders import (
    FEB_15,
    GRACE,
    OPENED,
    PRO,
    Counter,
    assert_replays,
    close,
    event_names,
    open_account,
)
from payments_builders import POLICY
from unit_builders import numbers, utc

from ledger.application import Ledger
from ledger.contacts.account import ContactsAccount
from ledger.money import Money
from ledger.payments.held import PaymentReport
from ledger.payments.notices import Notice
from ledger.payments.schedule import Collection

PF1 = "PF-acc-7-0001"
ISSUED = OPENED + GRACE  # 2027-01-15 16:00Z
DAY = timedelta(days=1)


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def with_proforma() -> ContactsAccount:
    account = open_account()
    [proforma] = close(account, ISSUED, Counter({OPENED: 0}))
    assert (proforma.number, proforma.total) == (PF1, eur("19.00"))
    return account


def failed(
    account: ContactsAccount, attempt: int, at: datetime, *, retryable: bool = True, **kw: Any
) -> int:
    request = kw.pop("request_id", f"{PF1}/attempt-{attempt}")
    report = PaymentReport.of(f"bridge f-{attempt}", Decimal("19.00"), "EUR", PF1, request, at)
    return account.record_payment_failure(
        report, kw.pop("reason", "insufficient funds"), retryable, POLICY
    )


def paid(
    account: ContactsAccount, amount: str, at: datetime, request_id: str | None, pid: str = "p-1"
) -> list[Any]:
    report = PaymentReport.of(f"bridge {pid}", Decimal(amount), "EUR", PF1, request_id, at)
    _, invoices = account.receive_payment(report, numbers(), POLICY)
    return invoices


def requested(account: ContactsAccount, now: datetime) -> list[tuple[str, str, int]]:
    return [(r.request_id, str(r.amount.amount), r.attempt) for r in account.collect(now, POLICY)]


def dunning_events(events: list[Any]) -> list[Any]:
    return [e for e in events if type(e).__name__ == "DunningChanged"]


def changes(event: Any) -> list[tuple[str, str, int | None, str, datetime | None]]:
    return [
        (
            c.change,
            c.notice.notice_id,
            c.notice.attempt,
            str(c.notice.amount_due.amount),
            c.notice.next_attempt_at,
        )
        for c in event.notice_changes
    ]


def test_attempt_1_is_requested_once_at_issue_and_no_notice_exists_before_it_fails() -> None:
    account = with_proforma()
    assert account.collections == {PF1: Collection(PF1, 1, "scheduled", ISSUED)}
    assert account.next_chase_at(POLICY) == ISSUED
    assert (account.notices, account.dunning_state) == ({}, "current")
    assert requested(account, ISSUED - timedelta(microseconds=1)) == []
    assert requested(account, ISSUED) == [(f"{PF1}/attempt-1", "19.00", 1)]
    # never twice: the attempt awaits its answer
    assert requested(account, ISSUED) == []
    assert requested(account, ISSUED + 30 * DAY) == []
    assert account.next_chase_at(POLICY) is None
    assert account.notices == {}
    events = assert_replays(account)
    [request] = [e for e in events if type(e).__name__ == "CollectionRequested"]
    assert (request.effective_at, request.account_id, request.request_id) == (
        ISSUED,
        "acc-7",
        f"{PF1}/attempt-1",
    )
    assert (request.reference, request.amount, request.attempt) == (PF1, eur("19.00"), 1)
    # the collection's start, recorded after the close: no transition, no notice
    [started] = dunning_events(events)
    assert (started.effective_at, started.state, started.transitions) == (ISSUED, "current", ())
    assert started.notice_changes == ()
    assert started.collections == (Collection(PF1, 1, "scheduled", ISSUED),)
    assert event_names(events)[-3:] == ["ProformaIssued", "DunningChanged", "CollectionRequested"]


def test_a_failed_attempt_opens_a_notice_and_schedules_the_retry_a_day_later() -> None:
    account = with_proforma()
    requested(account, ISSUED)
    account.collect_events()
    at = utc(2027, 1, 15, 17)
    version = failed(account, 1, at)
    failure, change = account.collect_events()
    assert (type(failure).__name__, failure.originator_version) == ("PaymentFailed", version)
    assert type(change).__name__ == "DunningChanged"
    assert (change.effective_at, change.account_id, change.state) == (at, "acc-7", "past_due")
    assert change.delinquent == {PF1: "past_due"}
    [transition] = change.transitions
    assert (transition.from_state, transition.to_state, transition.at) == (
        "current",
        "past_due",
        at,
    )
    assert transition.reason == (
        f"attempt 1 to collect 19.00 EUR for {PF1} failed: insufficient funds;"
        " next attempt 2027-01-16 17:00:00+00:00"
    )
    # one day after the first failure, at its clock time
    assert changes(change) == [
        ("opened", f"{PF1}/payment_failed", 1, "19.00", utc(2027, 1, 16, 17))
    ]
    assert change.collections == (Collection(PF1, 2, "scheduled", utc(2027, 1, 16, 17), at),)
    assert account.next_chase_at(POLICY) == utc(2027, 1, 16, 17)
    assert requested(account, utc(2027, 1, 16, 16, 59)) == []
    assert requested(account, utc(2027, 1, 16, 17)) == [(f"{PF1}/attempt-2", "19.00", 2)]


def test_every_retry_failing_suspends_and_a_transfer_reinstates() -> None:
    account = with_proforma()
    requested(account, ISSUED)
    account.collect_events()
    failed(account, 1, utc(2027, 1, 15, 17))
    # retries 1, 3, 5, 7 days after the first failure (Jan 15 17:00Z)
    for attempt, day in ((2, 16), (3, 18), (4, 20), (5, 22)):
        assert requested(account, utc(2027, 1, day, 17)) == [
            (f"{PF1}/attempt-{attempt}", "19.00", attempt)
        ]
        failed(account, attempt, utc(2027, 1, day, 18))
    assert account.dunning_state == "suspended"
    assert account.collections[PF1].status == "exhausted"
    assert account.next_chase_at(POLICY) is None
    events = account.collect_events()
    last = dunning_events(events)[-1]
    assert [(t.from_state, t.to_state) for t in last.transitions] == [("past_due", "suspended")]
    assert last.transitions[0].reason == (
        f"attempt 5 to collect 19.00 EUR for {PF1}, the last, ended unpaid: insufficient funds"
    )
    assert changes(last) == [
        ("updated", f"{PF1}/payment_failed", 5, "19.00", None),
        ("opened", f"{PF1}/suspended", 5, "19.00", None),
    ]
    # the updates in between: attempts 2, 3, 4 with their next attempts
    assert [changes(e) for e in dunning_events(events)[1:4]] == [
        [("updated", f"{PF1}/payment_failed", 2, "19.00", utc(2027, 1, 18, 17))],
        [("updated", f"{PF1}/payment_failed", 3, "19.00", utc(2027, 1, 20, 17))],
        [("updated", f"{PF1}/payment_failed", 4, "19.00", utc(2027, 1, 22, 17))],
    ]
    # paid by transfer (no request): settled, both notices resolved, back to current
    at = utc(2027, 1, 23, 9)
    [invoice] = paid(account, "19.00", at, None)
    assert invoice.number == "2027-000001"
    received, change, paid_event = account.collect_events()
    assert event_names([received, change, paid_event]) == [
        "PaymentReceived",
        "DunningChanged",
        "ProformaPaid",
    ]
    assert change.state == "current"
    assert [(t.from_state, t.to_state, t.reason) for t in change.transitions] == [
        ("suspended", "current", f"{PF1} paid: nothing is past due")
    ]
    assert [
        (c.change, c.notice.notice_id, c.notice.resolved_at) for c in change.notice_changes
    ] == [
        ("resolved", f"{PF1}/payment_failed", at),
        ("resolved", f"{PF1}/suspended", at),
    ]
    assert [(c.reference, c.status) for c in change.collections] == [(PF1, "settled")]
    assert (account.collections, account.notices, account.delinquent) == ({}, {}, {})


def test_a_hard_decline_suspends_at_once_and_is_not_retried() -> None:
    account = with_proforma()
    requested(account, ISSUED)
    account.collect_events()
    failed(account, 1, utc(2027, 1, 15, 17), retryable=False, reason="card stolen")
    assert account.dunning_state == "suspended"
    assert account.collections[PF1].status == "declined"
    assert account.next_chase_at(POLICY) is None
    assert requested(account, ISSUED + 30 * DAY) == []
    [change] = dunning_events(account.collect_events())
    assert [(t.from_state, t.to_state) for t in change.transitions] == [("current", "suspended")]
    assert changes(change) == [
        ("opened", f"{PF1}/payment_failed", 1, "19.00", None),
        ("opened", f"{PF1}/suspended", 1, "19.00", None),
    ]


def test_a_partial_payment_of_an_attempt_asks_for_the_rest_at_the_next_retry() -> None:
    account = with_proforma()
    requested(account, ISSUED)
    failed(account, 1, utc(2027, 1, 15, 17))
    requested(account, utc(2027, 1, 16, 17))
    account.collect_events()
    assert paid(account, "10.00", utc(2027, 1, 16, 18), f"{PF1}/attempt-2") == []
    _, change = account.collect_events()
    # not a failure: no transition; the notice shows 9.00 due and the next attempt
    assert (change.state, change.transitions) == ("past_due", ())
    assert changes(change) == [
        ("updated", f"{PF1}/payment_failed", 1, "9.00", utc(2027, 1, 18, 17))
    ]
    assert change.collections == (
        Collection(PF1, 3, "scheduled", utc(2027, 1, 18, 17), utc(2027, 1, 15, 17)),
    )
    assert requested(account, utc(2027, 1, 18, 17)) == [(f"{PF1}/attempt-3", "9.00", 3)]


def test_a_late_failure_of_an_earlier_attempt_does_not_reopen_a_settled_notice() -> None:
    account = with_proforma()
    requested(account, ISSUED)
    failed(account, 1, utc(2027, 1, 15, 17))
    requested(account, utc(2027, 1, 16, 17))
    paid(account, "19.00", utc(2027, 1, 16, 18), f"{PF1}/attempt-2")
    assert (account.dunning_state, account.notices) == ("current", {})
    account.collect_events()
    # attempt 1's answer again (another message id), and one for attempt 2, after the payment
    failed(account, 1, utc(2027, 1, 16, 19))
    failed(account, 2, utc(2027, 1, 16, 20))
    assert event_names(account.collect_events()) == ["PaymentFailed", "PaymentFailed"]
    assert (account.dunning_state, account.notices, account.collections) == ("current", {}, {})


def test_an_answer_for_another_request_than_the_one_awaited_is_ignored() -> None:
    account = with_proforma()
    requested(account, ISSUED)
    account.collect_events()
    failed(account, 1, utc(2027, 1, 15, 17), request_id=f"{PF1}/attempt-7")
    assert event_names(account.collect_events()) == ["PaymentFailed"]
    assert account.collections[PF1].status == "requested"


def test_held_credit_pays_a_proforma_at_issue_so_nothing_is_requested() -> None:
    account = open_account()
    report = PaymentReport.of("bridge p-0", Decimal("19.00"), "EUR", None, None, OPENED)
    account.receive_payment(report, numbers(), POLICY)
    account.collect_events()
    account.close_periods(ISSUED, GRACE, Counter({OPENED: 0}), numbers())
    events = account.collect_events()
    # never asked for: its collection ends with the proforma, nothing chased to record
    assert event_names(events) == ["ProformaIssued", "CreditApplied", "ProformaPaid"]
    assert account.collections == {}
    assert requested(account, ISSUED) == []


def test_a_replaced_proforma_is_no_longer_collected_its_replacement_is() -> None:
    account = open_account()
    counter = Counter({OPENED: 0, FEB_15: 0})
    close(account, FEB_15 + GRACE, counter)
    assert sorted(account.collections) == [PF1, "PF-acc-7-0002"]
    account.change_plan(PRO, None, None, utc(2027, 2, 14))
    account.collect_events()
    [replacement] = close(account, FEB_15 + DAY, counter)
    assert replacement.number == "PF-acc-7-0003"
    replaced, change, started = account.collect_events()
    assert event_names([replaced, change, started]) == [
        "ProformaReplaced",
        "DunningChanged",
        "DunningChanged",
    ]
    assert change.collections == (Collection("PF-acc-7-0002", 1, "cancelled", None),)
    assert (change.transitions, change.notice_changes) == ((), ())
    assert started.collections == (Collection("PF-acc-7-0003", 1, "scheduled", FEB_15 + DAY),)
    assert account.collections == {
        PF1: Collection(PF1, 1, "scheduled", FEB_15 + GRACE),
        "PF-acc-7-0003": Collection("PF-acc-7-0003", 1, "scheduled", FEB_15 + DAY),
    }


def test_a_failed_then_replaced_proforma_resolves_its_notice() -> None:
    account = open_account()
    counter = Counter({OPENED: 0, FEB_15: 0})
    close(account, FEB_15 + GRACE, counter)
    account.collect(FEB_15 + GRACE, POLICY)
    # PF2's attempt 1 fails; PF1's is still unanswered
    report = PaymentReport.of(
        "bridge f-2", Decimal("19.00"), "EUR", "PF-acc-7-0002", None, FEB_15 + GRACE + GRACE
    )
    account.record_payment_failure(report, "expired card", True, POLICY)
    assert list(account.notices) == ["PF-acc-7-0002/payment_failed"]
    account.change_plan(PRO, None, None, utc(2027, 2, 14))
    account.collect_events()
    close(account, FEB_15 + DAY, counter)
    _, change, _ = account.collect_events()
    assert change.state == "current"
    assert [(t.from_state, t.to_state, t.reason) for t in change.transitions] == [
        ("past_due", "current", "PF-acc-7-0002 replaced: nothing is past due")
    ]
    assert [(c.change, c.notice.notice_id) for c in change.notice_changes] == [
        ("resolved", "PF-acc-7-0002/payment_failed")
    ]
    assert account.notices == {}


def test_the_chase_replays_and_survives_the_store_encoding() -> None:
    account = with_proforma()
    requested(account, ISSUED)
    failed(account, 1, utc(2027, 1, 15, 17))
    requested(account, utc(2027, 1, 16, 17))
    paid(account, "10.00", utc(2027, 1, 16, 18), f"{PF1}/attempt-2")
    events = account.collect_events()
    ledger = Ledger()
    try:
        mapper = ledger.mapper
        stored = [mapper.to_domain_event(mapper.to_stored_event(e)) for e in events]
    finally:
        ledger.close()
    copy: Any = None
    for event in stored:
        copy = event.mutate(copy)
    assert (copy.collections, copy.notices) == (account.collections, account.notices)
    assert (copy.dunning_state, copy.delinquent) == ("past_due", {PF1: "past_due"})
    [notice] = copy.notices.values()
    assert notice == Notice(
        f"{PF1}/payment_failed",
        "payment_failed",
        PF1,
        eur("9.00"),
        "insufficient funds",
        1,
        utc(2027, 1, 18, 17),
        utc(2027, 1, 15, 17),
    )


def test_a_snapshot_from_before_the_chase_upcasts_to_nothing_chased() -> None:
    state: dict[str, Any] = {"open_proformas": {}}
    ContactsAccount.upcast_v2_v3(state)
    assert state == {
        "open_proformas": {},
        "collections": {},
        "dunning_state": "current",
        "delinquent": {},
        "notices": {},
    }


def test_a_suspended_account_keeps_renewing_and_its_renewal_is_collected() -> None:
    """Suspension loses nothing: the next renewal is issued and asked for as usual."""
    account = with_proforma()
    requested(account, ISSUED)
    failed(account, 1, utc(2027, 1, 15, 17), retryable=False, reason="card stolen")
    assert account.dunning_state == "suspended"
    [renewal] = close(account, FEB_15 + GRACE, Counter({FEB_15: 0}))
    assert (renewal.number, renewal.total) == ("PF-acc-7-0002", eur("19.00"))
    assert requested(account, FEB_15 + GRACE) == [("PF-acc-7-0002/attempt-1", "19.00", 1)]
    assert account.dunning_state == "suspended"  # until what is past due is paid
    assert_replays(account)
