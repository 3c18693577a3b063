"""The dunning state machine (issue 11): every transition with its reason, and
the due-date facts a scan derives for documents paid by transfer."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from payments_builders import AMS, POLICY

from ledger.money import Money
from ledger.payments.dunning import (
    AttemptUnpaid,
    BecameOverdue,
    Dunning,
    LongOverdue,
    PaymentFact,
    Settled,
    Transition,
    next_overdue_check_at,
    overdue_facts,
    step,
)
from ledger.payments.receivables import Receivable, SettledBy
from ledger.payments.schedule import AttemptEnded, Collection, FinalWhy

T = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
DUE = Money.of("119.00", "EUR")


def unpaid(
    reference: str,
    attempt: int = 1,
    final: FinalWhy | None = None,
    outcome: str = "failed",
    reason: str = "card declined",
) -> AttemptUnpaid:
    next_at = None if final else datetime(2026, 1, 16, 8, 0, tzinfo=UTC)
    ended = AttemptEnded(
        reference,
        attempt,
        T,
        outcome,
        reason,
        next_at,
        final,
        Collection(reference, attempt + 1, "scheduled", next_at),  # type: ignore[arg-type]
    )
    return AttemptUnpaid(ended, DUE)


def overdue(reference: str) -> BecameOverdue:
    return BecameOverdue(reference, T, date(2026, 1, 14), DUE)


def long_overdue(reference: str) -> LongOverdue:
    return LongOverdue(reference, T, date(2026, 1, 14), 14, DUE)


def paid(reference: str) -> Settled:
    return Settled(reference, T, "paid")


def run(*facts: PaymentFact) -> tuple[Dunning, list[Transition]]:
    dunning, transitions = Dunning(), []
    for fact in facts:
        dunning, transition = step(dunning, fact)
        if transition is not None:
            transitions.append(transition)
    return dunning, transitions


def moves(*facts: PaymentFact) -> list[tuple[str, str, str]]:
    return [(t.from_state, t.to_state, t.reference) for t in run(*facts)[1]]


# ---------------------------------------------------------------- each transition


def test_current_to_past_due_on_the_first_failed_attempt() -> None:
    dunning, (transition,) = run(unpaid("PF-1"))
    assert dunning == Dunning("past_due", (("PF-1", "past_due"),))
    assert transition == Transition(
        "current",
        "past_due",
        T,
        "PF-1",
        "attempt 1 to collect 119.00 EUR for PF-1 failed: card declined;"
        " next attempt 2026-01-16 08:00:00+00:00",
    )


def test_current_to_past_due_when_a_transfer_paid_invoice_passes_its_due_date() -> None:
    _, (transition,) = run(overdue("2026-000042"))
    assert (transition.from_state, transition.to_state) == ("current", "past_due")
    assert transition.reason == "2026-000042 (119.00 EUR due) unpaid past its due date 2026-01-14"


def test_current_to_suspended_on_a_hard_decline() -> None:
    _, (transition,) = run(unpaid("PF-1", final="hard_decline", reason="stolen card"))
    assert (transition.from_state, transition.to_state) == ("current", "suspended")
    assert transition.reason == (
        "attempt 1 to collect 119.00 EUR for PF-1 was declined, not to be retried: stolen card"
    )


def test_past_due_to_suspended_when_the_last_retry_fails() -> None:
    dunning, transitions = run(unpaid("PF-1"), unpaid("PF-1", 2), unpaid("PF-1", 5, "last_attempt"))
    assert [(t.from_state, t.to_state) for t in transitions] == [
        ("current", "past_due"),
        ("past_due", "suspended"),
    ]
    assert transitions[-1].reason == (
        "attempt 5 to collect 119.00 EUR for PF-1, the last, ended unpaid: card declined"
    )
    assert dunning.state == "suspended"


def test_past_due_to_suspended_after_n_days_overdue() -> None:
    _, transitions = run(overdue("2026-000042"), long_overdue("2026-000042"))
    assert transitions[-1].reason == (
        "2026-000042 (119.00 EUR due) unpaid 14 days after its due date 2026-01-14"
    )
    assert (transitions[-1].from_state, transitions[-1].to_state) == ("past_due", "suspended")


def test_past_due_to_current_when_what_is_due_is_paid() -> None:
    dunning, transitions = run(unpaid("PF-1"), paid("PF-1"))
    assert dunning == Dunning()
    assert (transitions[-1].from_state, transitions[-1].to_state) == ("past_due", "current")
    assert transitions[-1].reason == "PF-1 paid: nothing is past due"


def test_suspended_to_current_when_what_is_due_is_paid() -> None:
    assert moves(unpaid("PF-1", final="hard_decline"), paid("PF-1")) == [
        ("current", "suspended", "PF-1"),
        ("suspended", "current", "PF-1"),
    ]


def test_a_replaced_proforma_is_no_longer_past_due() -> None:
    dunning, transitions = run(unpaid("PF-1"), Settled("PF-1", T, "replaced"))
    assert dunning.state == "current"
    assert transitions[-1].reason == "PF-1 replaced: nothing is past due"


# ---------------------------------------------------------------- facts that change no state


def test_a_second_failure_or_a_second_late_document_keeps_past_due() -> None:
    assert moves(unpaid("PF-1"), unpaid("PF-1", 2), overdue("2026-000042"), unpaid("PF-2")) == [
        ("current", "past_due", "PF-1")
    ]


def test_paying_one_of_two_past_due_documents_keeps_past_due() -> None:
    dunning, transitions = run(unpaid("PF-1"), unpaid("PF-2"), paid("PF-1"))
    assert dunning == Dunning("past_due", (("PF-2", "past_due"),))
    assert len(transitions) == 1


def test_suspended_stays_until_everything_past_due_is_paid() -> None:
    # PF-2 suspends the account while PF-1 is past due; paying PF-2 does not half-reinstate it.
    dunning, transitions = run(
        unpaid("PF-1"), unpaid("PF-2", final="hard_decline"), paid("PF-2"), unpaid("PF-1", 2)
    )
    assert dunning == Dunning("suspended", (("PF-1", "past_due"),))
    assert [(t.from_state, t.to_state) for t in transitions] == [
        ("current", "past_due"),
        ("past_due", "suspended"),
    ]
    dunning, transition = step(dunning, paid("PF-1"))
    assert dunning == Dunning()
    assert transition is not None
    assert (transition.from_state, transition.to_state) == ("suspended", "current")


def test_a_partial_payment_that_leaves_a_retry_is_not_a_failure() -> None:
    assert moves(unpaid("PF-1", outcome="partly_paid", reason="paid in part")) == []
    # ... nor does it clear a failure before it.
    dunning, _ = run(unpaid("PF-1"), unpaid("PF-1", 2, outcome="partly_paid"))
    assert dunning.state == "past_due"


def test_a_payment_of_a_document_nobody_chased_changes_nothing() -> None:
    assert run(paid("PF-9")) == (Dunning(), [])


def test_a_partial_payment_on_the_last_attempt_suspends() -> None:
    assert moves(unpaid("PF-1", 5, "last_attempt", outcome="partly_paid")) == [
        ("current", "suspended", "PF-1")
    ]


# ---------------------------------------------------------------- due dates


def invoice(
    reference: str,
    due_on: date,
    *,
    settled_by: SettledBy = "transfer",
    paid: str = "0.00",
    replaced_by: str | None = None,
) -> Receivable:
    return Receivable(
        reference,
        DUE,
        Money.of(paid, "EUR"),
        date(2026, 11, 1),
        due_on,
        settled_by,
        replaced_by,
    )


INVOICE = invoice("2026-000042", date(2026, 11, 15))


def test_an_invoice_is_overdue_from_local_midnight_after_its_due_date() -> None:
    # Due Sun 15 Nov 2026 (Amsterdam, CET): overdue from 16 Nov 00:00 CET = 15 Nov 23:00Z,
    # suspending 14 days later, 30 Nov 00:00 CET = 29 Nov 23:00Z.
    current = Dunning()
    assert (
        overdue_facts(
            [INVOICE], current, POLICY, AMS, datetime(2026, 11, 15, 22, 59, 59, tzinfo=UTC)
        )
        == []
    )
    assert next_overdue_check_at([INVOICE], current, POLICY, AMS) == datetime(
        2026, 11, 15, 23, tzinfo=UTC
    )
    (fact,) = overdue_facts([INVOICE], current, POLICY, AMS, datetime(2026, 11, 15, 23, tzinfo=UTC))
    assert fact == BecameOverdue(
        "2026-000042", datetime(2026, 11, 15, 23, tzinfo=UTC), date(2026, 11, 15), DUE
    )
    past_due, _ = step(current, fact)
    assert (
        overdue_facts([INVOICE], past_due, POLICY, AMS, datetime(2026, 11, 29, 22, tzinfo=UTC))
        == []
    )
    assert next_overdue_check_at([INVOICE], past_due, POLICY, AMS) == datetime(
        2026, 11, 29, 23, tzinfo=UTC
    )
    (late,) = overdue_facts(
        [INVOICE], past_due, POLICY, AMS, datetime(2026, 11, 29, 23, tzinfo=UTC)
    )
    assert late == LongOverdue(
        "2026-000042", datetime(2026, 11, 29, 23, tzinfo=UTC), date(2026, 11, 15), 14, DUE
    )
    suspended, _ = step(past_due, late)
    assert overdue_facts([INVOICE], suspended, POLICY, AMS, datetime(2027, 6, 1, tzinfo=UTC)) == []
    assert next_overdue_check_at([INVOICE], suspended, POLICY, AMS) is None


def test_a_scan_long_after_the_due_date_finds_both_facts_in_order() -> None:
    facts = overdue_facts([INVOICE], Dunning(), POLICY, AMS, datetime(2026, 12, 10, tzinfo=UTC))
    assert [type(f) for f in facts] == [BecameOverdue, LongOverdue]
    assert moves(*facts) == [
        ("current", "past_due", "2026-000042"),
        ("past_due", "suspended", "2026-000042"),
    ]


@pytest.mark.parametrize(
    "receivable",
    [
        invoice("PF-1", date(2026, 11, 1), settled_by="collection"),
        invoice("2026-000042", date(2026, 11, 15), paid="119.00"),
        invoice("PF-2", date(2026, 11, 1), replaced_by="PF-3"),
    ],
    ids=["card-paid proforma", "paid invoice", "replaced"],
)
def test_card_paid_paid_and_replaced_documents_are_never_overdue(receivable: Receivable) -> None:
    assert (
        overdue_facts([receivable], Dunning(), POLICY, AMS, datetime(2027, 1, 1, tzinfo=UTC)) == []
    )
    assert next_overdue_check_at([receivable], Dunning(), POLICY, AMS) is None
