"""Payment-failure notices (issue 11, seed 002): the lifecycle by hand, and a
simulated year of a card-paid account proving that no notice exists before a
collection attempt failed, whatever the payment bridge answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from payments_builders import AMS, POLICY, REF

from ledger.money import Money
from ledger.payments.allocation import Credit, Payment, apply_credit, apply_payment
from ledger.payments.dunning import (
    AttemptUnpaid,
    BecameOverdue,
    Dunning,
    LongOverdue,
    PaymentFact,
    Settled,
    step,
)
from ledger.payments.notices import (
    Notice,
    NoticeChange,
    apply_changes,
    check_no_notice_before_failure,
    notice_changes,
)
from ledger.payments.receivables import Receivable
from ledger.payments.schedule import (
    AttemptEnded,
    Collection,
    Failure,
    due_for_collection,
    mark_requested,
    record_failure,
    record_payment,
    start_collection,
)
from ledger.periods import zone

AMS_ZONE = zone(AMS)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def at(day: int, hour: int = 8) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


class Book:
    """The account's payment facts run through the rules in the order an
    aggregate would call them (docs/payments.md, "How the aggregates will use this")."""

    def __init__(self) -> None:
        self.dunning = Dunning()
        self.notices: tuple[Notice, ...] = ()
        self.changes: list[NoticeChange] = []

    def apply(self, fact: PaymentFact) -> list[NoticeChange]:
        self.dunning, transition = step(self.dunning, fact)
        changes = notice_changes(self.notices, fact, transition)
        self.notices = apply_changes(self.notices, changes)
        self.changes.extend(changes)
        return changes


def failed(
    attempt: int, when: datetime, next_at: datetime | None, final: str | None = None
) -> AttemptUnpaid:
    ended = AttemptEnded(
        REF,
        attempt,
        when,
        "failed",
        "insufficient funds",
        next_at,
        final,
        Collection(REF, attempt + 1, "scheduled", next_at),
    )  # type: ignore[arg-type]
    return AttemptUnpaid(ended, eur("59.50"))


def test_a_failed_attempt_opens_a_notice_a_retry_updates_it_and_the_payment_resolves_it() -> None:
    book = Book()
    (opened,) = book.apply(failed(1, at(15), at(16)))
    assert opened == NoticeChange(
        "opened",
        Notice(
            f"{REF}/payment_failed",
            "payment_failed",
            REF,
            eur("59.50"),
            "insufficient funds",
            1,
            at(16),
            at(15),
        ),
    )
    (updated,) = book.apply(failed(2, at(16), at(18)))
    assert updated.change == "updated"
    assert (updated.notice.attempt, updated.notice.next_attempt_at, updated.notice.opened_at) == (
        2,
        at(18),
        at(15),
    )
    (resolved,) = book.apply(Settled(REF, at(17), "paid"))
    assert resolved.change == "resolved"
    assert (resolved.notice.resolved_at, resolved.notice.state) == (at(17), "resolved")
    assert [n.state for n in book.notices] == ["resolved"]


def test_a_partial_payment_updates_the_amount_due_of_the_open_notice_and_opens_none() -> None:
    book = Book()
    partial = AttemptEnded(
        REF,
        1,
        at(15),
        "partly_paid",
        "paid in part",
        at(16),
        None,
        Collection(REF, 2, "scheduled", at(16)),
    )
    assert book.apply(AttemptUnpaid(partial, eur("20.00"))) == []
    book.apply(failed(2, at(16), at(18)))
    partial = AttemptEnded(
        REF,
        3,
        at(18),
        "partly_paid",
        "paid in part",
        at(20),
        None,
        Collection(REF, 4, "scheduled", at(20)),
    )
    (change,) = book.apply(AttemptUnpaid(partial, eur("10.00")))
    assert (change.change, change.notice.amount_due, change.notice.next_attempt_at) == (
        "updated",
        eur("10.00"),
        at(20),
    )


def test_the_last_failure_opens_a_suspended_notice_that_reinstatement_resolves() -> None:
    book = Book()
    book.apply(failed(1, at(15), at(16)))
    changes = book.apply(failed(5, at(22), None, "last_attempt"))
    assert [(c.change, c.notice.kind) for c in changes] == [
        ("updated", "payment_failed"),
        ("opened", "suspended"),
    ]
    suspended = changes[1].notice
    assert (suspended.notice_id, suspended.attempt, suspended.amount_due) == (
        f"{REF}/suspended",
        5,
        eur("59.50"),
    )
    assert (
        suspended.reason
        == "attempt 5 to collect 59.50 EUR for PF-a-0001, the last, ended unpaid: insufficient funds"
    )
    changes = book.apply(Settled(REF, at(25), "paid"))
    assert sorted((c.change, c.notice.kind) for c in changes) == [
        ("resolved", "payment_failed"),
        ("resolved", "suspended"),
    ]
    assert all(n.state == "resolved" for n in book.notices)


def test_an_overdue_invoice_opens_an_overdue_notice_without_any_attempt() -> None:
    book = Book()
    (opened,) = book.apply(BecameOverdue("2026-000042", at(16), date(2026, 1, 15), eur("119.00")))
    assert (opened.notice.kind, opened.notice.reason, opened.notice.attempt) == (
        "overdue",
        "unpaid past its due date 2026-01-15",
        None,
    )
    check_no_notice_before_failure(opened.notice, [], at(16))
    (suspended,) = book.apply(
        LongOverdue("2026-000042", at(30), date(2026, 1, 15), 14, eur("119.00"))
    )
    assert suspended.notice.kind == "suspended"
    assert [c.change for c in book.apply(Settled("2026-000042", at(31), "paid"))] == [
        "resolved",
        "resolved",
    ]


# ---------------------------------------------------------------- a simulated year

ANSWERS = st.sampled_from(["fail", "fail", "hard", "pay", "partial", "stale", "late"])


class Year:
    """A contacts account renewed on the 15th of every month of 2026 (59.50 EUR a
    proforma), ticking every 6 hours; the bridge answers each request with the
    next drawn answer, one tick later ("late": three days later)."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = iter(answers)
        self.receivables: dict[str, Receivable] = {}
        self.collections: dict[str, Collection] = {}
        self.credit: tuple[Credit, ...] = ()
        self.book = Book()
        self.unpaid_at: dict[str, list[datetime]] = {}
        self.awaiting: list[tuple[datetime, str, str]] = []  # (answer at, reference, request id)
        self.requests: list[str] = []
        self.payments = 0

    def issue(self, month: int, now: datetime) -> None:
        ref = f"PF-a-{month:04d}"
        self.receivables[ref] = Receivable(
            ref, eur("59.50"), eur("0.00"), now.date(), now.date(), "collection"
        )
        done = apply_credit(list(self.receivables.values()), self.credit, "EUR")
        self.receivables, self.credit = {r.reference: r for r in done.receivables}, done.credit
        self.collections[ref] = start_collection(ref, now)
        for paid in done.paid:
            self.settle(paid, now, None)

    def settle(self, ref: str, now: datetime, answers: str | None) -> None:
        after = record_payment(
            self.collections[ref], self.receivables[ref].amount_due, now, answers, POLICY, AMS
        )
        if isinstance(after, AttemptEnded):
            self.collections[ref] = after.collection
            self.fact(AttemptUnpaid(after, self.receivables[ref].amount_due))
        else:
            self.collections[ref] = after
        if self.receivables[ref].state == "paid":
            self.fact(Settled(ref, now, "paid"))

    def fact(self, fact: PaymentFact) -> None:
        if isinstance(fact, AttemptUnpaid) and (fact.ended.outcome == "failed" or fact.ended.final):
            self.unpaid_at.setdefault(fact.reference, []).append(fact.at)
        self.book.apply(fact)

    def pay(self, ref: str, amount: Money, now: datetime, request: str | None) -> None:
        self.payments += 1
        done = apply_payment(
            list(self.receivables.values()),
            self.credit,
            Payment(f"p{self.payments}", amount, ref),
            "EUR",
        )
        self.receivables, self.credit = {r.reference: r for r in done.receivables}, done.credit
        for touched in dict.fromkeys(a.reference for a in done.allocations):
            self.settle(touched, now, request if touched == ref else None)

    def answer(self, ref: str, request: str, now: datetime) -> None:
        answer = next(self.answers, "pay")
        due = self.receivables[ref].amount_due
        if answer in ("fail", "hard", "late"):
            ended = record_failure(
                self.collections[ref],
                Failure(request, now, "declined", answer != "hard"),
                POLICY,
                AMS,
            )
            if isinstance(ended, AttemptEnded):
                self.collections[ref] = ended.collection
                self.fact(AttemptUnpaid(ended, due))
        elif answer == "partial" and due.amount > Decimal("0.01"):
            self.pay(ref, Money((due.amount / 2).quantize(Decimal("0.01")), "EUR"), now, request)
        elif answer == "stale":
            self.pay(ref, due, now, request)  # paid, then the same request's failure arrives late
            ignored = record_failure(
                self.collections[ref], Failure(request, now, "late"), POLICY, AMS
            )
            assert not isinstance(ignored, AttemptEnded)
        else:
            self.pay(ref, due, now, request)

    def tick(self, now: datetime) -> None:
        local = now.astimezone(AMS_ZONE)
        if local.day == 15 and local.hour < 6:  # the first tick of the 15th, CET or CEST
            self.issue(local.month, now)
        amounts = {ref: r.amount_due for ref, r in self.receivables.items()}
        for request in due_for_collection(self.collections.values(), amounts, now):
            self.collections[request.reference] = mark_requested(
                self.collections[request.reference], request
            )
            self.requests.append(request.request_id)
            self.awaiting.append((now + timedelta(hours=6), request.reference, request.request_id))
        for item in [a for a in self.awaiting if a[0] <= now]:
            self.awaiting.remove(item)
            self.answer(item[1], item[2], now)
        self.check(now)

    def run(self) -> None:
        now = datetime(2025, 12, 31, 23, tzinfo=UTC)  # 1 Jan 2026 00:00 in Amsterdam
        while now < datetime(2027, 1, 1, tzinfo=UTC):
            self.tick(now)
            now += timedelta(hours=6)

    def check(self, now: datetime) -> None:
        assert len(self.requests) == len(set(self.requests)), "a request was made twice"
        for notice in self.book.notices:
            assert notice.opened_at <= now
            check_no_notice_before_failure(notice, self.unpaid_at.get(notice.reference, []), None)
            if self.receivables[notice.reference].state == "paid" and notice.kind != "suspended":
                assert notice.state == "resolved"
        for ref, collection in self.collections.items():
            if ref not in self.unpaid_at:  # not attempted, not answered, or paid at once
                assert not any(n.reference == ref for n in self.book.notices)
            assert collection.pending == (
                self.receivables[ref].state != "paid"
                and collection.status in ("scheduled", "requested")
            )


@settings(max_examples=40, deadline=None)
@given(st.lists(ANSWERS, max_size=60))
def test_a_year_of_card_payments_never_shows_a_notice_before_a_failed_attempt(
    answers: list[str],
) -> None:
    year = Year(answers)
    year.run()
    # Every proforma was asked for (payments are never more than is due: no credit to pay
    # one at its issue), and only what failed ever showed a notice.
    assert {r.split("/")[0] for r in year.requests} == set(year.receivables)
    assert {n.reference for n in year.book.notices} <= set(year.unpaid_at)
    if year.book.dunning.state == "current":
        assert all(n.state == "resolved" for n in year.book.notices)


def test_a_year_where_every_first_attempt_succeeds_shows_no_notice_at_all() -> None:
    year = Year(["pay"] * 12)
    year.run()
    assert year.book.notices == ()
    assert len(year.requests) == 12
    assert year.book.dunning == Dunning()


def test_a_year_whose_first_proforma_is_never_paid_ends_suspended_by_hand() -> None:
    # PF-a-0001: requested 14 Jan 23:00Z (15 Jan 00:00 CET), each answer 6 hours later;
    # first failure 15 Jan 05:00Z (06:00 CET), so retries 16, 18, 20 and 22 Jan at 05:00Z,
    # the fifth attempt fails 22 Jan 11:00Z: suspended. Every later proforma is paid.
    year = Year(["fail"] * 5)
    year.run()
    assert year.requests[:5] == [f"PF-a-0001/attempt-{n}" for n in range(1, 6)]
    assert year.unpaid_at["PF-a-0001"] == [
        datetime(2026, 1, day, hour, tzinfo=UTC)
        for day, hour in [(15, 5), (16, 11), (18, 11), (20, 11), (22, 11)]
    ]
    assert year.book.dunning == Dunning("suspended", (("PF-a-0001", "suspending"),))
    assert [(n.notice_id, n.state, n.attempt, n.opened_at) for n in year.book.notices] == [
        ("PF-a-0001/payment_failed", "open", 5, datetime(2026, 1, 15, 5, tzinfo=UTC)),
        ("PF-a-0001/suspended", "open", 5, datetime(2026, 1, 22, 11, tzinfo=UTC)),
    ]
    assert len(year.requests) == 5 + 11
