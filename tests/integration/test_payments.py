"""Paying documents through the broker: ``payment.succeeded`` settles what it names.

Real PostgreSQL and broker. Amounts are worked out by hand: an email-starter
postpay account with no emails owes its monthly fee, 10.00, plus 21% tax 2.10:
each month's invoice is 12.10 EUR. A contacts-basic account with no billable
contact and no product renews at tier 1, 19.00 a month, tax 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from commands.store import LedgerRecorder
from consumers.upstream_publisher import Outgoing
from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, poll_until, utc

OCT_CLOSE = utc(2026, 11, 1, 7)
NOV_CLOSE = utc(2026, 12, 1, 7)


class _Pipeline:
    """The upstreams and one consumer for a test (a new group member joins slowly)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.up = Upstreams(services)
        self.consumer = services.consumer()

    def deliver(self, messages: list[Outgoing]) -> None:
        """Publish, consume everything, and bring the read models up to date."""
        self.up.publish(messages)
        self.consumer.drain(timeout=60)
        catch_up(self.services)

    def close(self) -> None:
        self.consumer.close()
        self.up.close()


@pytest.fixture
def pipeline(make_services: MakeServices) -> Iterator[_Pipeline]:
    """An email-starter postpay account "p" opened 2026-10-01, tax 21%."""
    made = _Pipeline(make_services())
    made.deliver([made.up.opened("p", utc(2026, 10, 1), tax_rate="0.21")])
    yield made
    made.close()


def _document(services: Services, number: str) -> tuple[str, str, str, str]:
    row = services.reports().document(number)
    return (str(row["total"]), row["status"], str(row["paid"]), str(row["amount_due"]))


def _owed(services: Services, account: str = "p") -> tuple[str, str]:
    row = services.reports().balance(account)
    return (row["amount_owed"], row["unapplied_credit"])


def _credit(services: Services, account: str = "p") -> list[tuple[str, str, str, Any]]:
    held = services.reports().balance(account)["credit_held"]
    return [(c["amount"], c["currency"], c["reason"], c["reference"]) for c in held]


def test_a_postpay_invoice_paid_in_full_is_paid_and_nothing_is_owed(pipeline: _Pipeline) -> None:
    services, up = pipeline.services, pipeline.up
    [invoice] = services.close_periods(OCT_CLOSE)
    catch_up(services)
    assert (invoice.number, str(invoice.total.amount)) == ("2026-000001", "12.10")
    assert _document(services, "2026-000001") == ("12.10", "open", "0.00", "12.10")
    assert _owed(services) == ("12.10", "0.00")

    pipeline.deliver([up.payment("p", "12.10", utc(2026, 11, 5), "2026-000001")])
    assert _document(services, "2026-000001") == ("12.10", "paid", "12.10", "0.00")
    assert _owed(services) == ("0.00", "0.00")
    # A payment is not a prepaid credit: the balance (charges so far) does not move.
    balance = services.reports().balance("p")
    assert (balance["credited"], balance["debited"]) == ("0.00", "22.10")


def test_two_partial_payments_accumulate_and_the_second_settles_the_invoice(
    pipeline: _Pipeline,
) -> None:
    services, up = pipeline.services, pipeline.up
    services.close_periods(OCT_CLOSE)
    pipeline.deliver([up.payment("p", "5.00", utc(2026, 11, 5), "2026-000001")])
    # 12.10 - 5.00 = 7.10 still due
    assert _document(services, "2026-000001") == ("12.10", "partially_paid", "5.00", "7.10")
    assert _owed(services) == ("7.10", "0.00")
    pipeline.deliver([up.payment("p", "7.10", utc(2026, 11, 9), "2026-000001")])
    assert _document(services, "2026-000001") == ("12.10", "paid", "12.10", "0.00")
    assert _owed(services) == ("0.00", "0.00")


def test_an_overpayment_is_held_as_credit_and_pays_the_next_invoice_at_the_next_close(
    pipeline: _Pipeline,
) -> None:
    services, up = pipeline.services, pipeline.up
    services.close_periods(OCT_CLOSE)
    pipeline.deliver([up.payment("p", "20.00", utc(2026, 11, 5), "2026-000001")])
    # 20.00 - 12.10 = 7.90 held, nothing else open
    assert _document(services, "2026-000001") == ("12.10", "paid", "12.10", "0.00")
    assert _owed(services) == ("0.00", "7.90")
    assert _credit(services) == [("7.90", "EUR", "overpayment", "2026-000001")]

    [november] = services.close_periods(NOV_CLOSE)
    catch_up(services)
    # November's 12.10 takes the 7.90: 4.20 left to pay, no credit held
    assert november.number == "2026-000002"
    assert _document(services, "2026-000002") == ("12.10", "partially_paid", "7.90", "4.20")
    assert _owed(services) == ("4.20", "0.00")
    assert _credit(services) == []
    names = [type(e).__name__ for e in services.ledger.history("p")]
    assert names.count("PaymentReceived") == 1 and names.count("CreditApplied") == 1


def test_a_payment_naming_no_document_of_the_account_is_held_then_allocated(
    pipeline: _Pipeline,
) -> None:
    services, up = pipeline.services, pipeline.up
    pipeline.deliver([up.payment("p", "3.00", utc(2026, 10, 20), "INV-404")])
    assert _owed(services) == ("0.00", "3.00")
    assert _credit(services) == [("3.00", "EUR", "unknown_reference", "INV-404")]
    services.close_periods(OCT_CLOSE)
    catch_up(services)
    # 12.10 - 3.00 = 9.10
    assert _document(services, "2026-000001") == ("12.10", "partially_paid", "3.00", "9.10")
    assert _owed(services) == ("9.10", "0.00")


def test_a_payment_in_another_currency_is_held_and_never_allocated(pipeline: _Pipeline) -> None:
    services, up = pipeline.services, pipeline.up
    services.close_periods(OCT_CLOSE)
    pipeline.deliver(
        [up.payment("p", "12.10", utc(2026, 11, 5), "2026-000001", currency="USD")],
    )
    assert _document(services, "2026-000001") == ("12.10", "open", "0.00", "12.10")
    assert _owed(services) == ("12.10", "0.00")  # unapplied credit counts EUR only
    assert _credit(services) == [("12.10", "USD", "other_currency", "2026-000001")]


def test_a_duplicate_payment_event_is_applied_once(pipeline: _Pipeline) -> None:
    services, up = pipeline.services, pipeline.up
    services.close_periods(OCT_CLOSE)
    payment = up.payment("p", "5.00", utc(2026, 11, 5), "2026-000001", event_id="pay-1")
    again = up.payment("p", "5.00", utc(2026, 11, 5), "2026-000001", event_id="pay-1")
    pipeline.deliver([payment, again])
    pipeline.deliver([again])  # re-published later, at another offset
    assert _document(services, "2026-000001") == ("12.10", "partially_paid", "5.00", "7.10")
    names = [type(e).__name__ for e in services.ledger.history("p")]
    assert names.count("PaymentReceived") == 1


def test_a_proforma_paid_by_a_payment_becomes_the_invoice_with_the_next_number(
    pipeline: _Pipeline,
) -> None:
    services, up = pipeline.services, pipeline.up
    pipeline.deliver([up.opened("c", utc(2026, 10, 2), plan="contacts-basic")])
    # The email account's October invoice takes 2026-000001; "c" gets its first proforma.
    documents = services.close_periods(OCT_CLOSE)
    assert sorted(d.number for d in documents) == ["2026-000001", "PF-c-0001"]
    pipeline.deliver([up.payment("c", "19.00", utc(2026, 11, 3), "PF-c-0001")])
    proforma = services.reports().document("PF-c-0001")
    assert (proforma["status"], proforma["settled_by"]) == ("paid", "2026-000002")
    assert _document(services, "2026-000002") == ("19.00", "paid", "19.00", "0.00")
    assert services.reports().document("2026-000002")["proforma"] == "PF-c-0001"
    assert _owed(services, "c") == ("0.00", "0.00")
    # The number sequence was saved with the consumer's batch: the next close goes on.
    november = [d.number for d in services.close_periods(NOV_CLOSE) if d.kind == "invoice"]
    assert november == ["2026-000003"]


def test_payment_facts_for_an_account_not_open_yet_are_parked_then_applied(
    make_services: MakeServices,
) -> None:
    services = make_services(topic_partitions=1)
    services.clock = lambda: utc(2026, 10, 3)  # well within the parking bound of the payment
    up = Upstreams(services)
    recorder = services.ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    up.publish([up.payment("late", "4.00", utc(2026, 10, 2))])
    consumer = services.consumer()
    try:
        poll_until(consumer, lambda: recorder.parked_count() == 1, "the payment parked")
        up.publish([up.opened("late", utc(2026, 10, 1))])
        poll_until(consumer, lambda: recorder.parked_count() == 0, "the payment re-driven")
    finally:
        consumer.close()
        up.close()
    catch_up(services)
    assert _credit(services, "late") == [("4.00", "EUR", "no_reference", None)]


def test_a_failed_payment_is_recorded_and_an_invalid_one_dead_lettered(pipeline: _Pipeline) -> None:
    services, up = pipeline.services, pipeline.up
    services.close_periods(OCT_CLOSE)
    pipeline.deliver(
        [
            up.payment_failed(
                "p", "12.10", utc(2026, 11, 2), "2026-000001", "card declined", retryable=False
            ),
            up.payment("p", "0", utc(2026, 11, 3), "2026-000001"),
            up.payment("p", "1.001", utc(2026, 11, 3), "2026-000001"),
        ],
    )
    recorder = services.ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    [failed] = [e for e in services.ledger.history("p") if type(e).__name__ == "PaymentFailed"]
    assert (failed.reason, failed.retryable, failed.reference) == (  # type: ignore[attr-defined]
        "card declined",
        False,
        "2026-000001",
    )
    reasons = sorted(row["reason"] for row in recorder.dead_letters())
    assert reasons == [
        "a payment must be positive, got 0.00 EUR",
        "amount 1.001 EUR has more than the 2 decimal places of EUR",
    ]
    assert _document(services, "2026-000001") == ("12.10", "open", "0.00", "12.10")
