"""The payments read model and the receivables by age, from the stored payment events.

Real PostgreSQL and broker. Amounts by hand: an email-starter postpay account with no
emails owes its monthly fee 10.00 plus 21% tax 2.10: each month's invoice is 12.10
EUR, issued on the 1st (the close's date) and due 14 days later, on the 15th. A
contacts-basic account with no billable contact renews at 19.00 a month, tax 0; its
proforma is due on its issue date.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from consumers.upstream_publisher import Outgoing
from ledger.entrypoints.bootstrap import Services
from projections.payment_queries import age_bucket
from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, utc

D = Decimal
BRIDGE = "urn:test:payment-bridge"
OCT_CLOSE = utc(2026, 11, 1, 7)
NOV_CLOSE = utc(2026, 12, 1, 7)


def _rows(services: Services, query: str) -> list[dict[str, Any]]:
    return services.payment_reports().rows.rows(query)


def _payments(services: Services) -> list[tuple[Any, ...]]:
    return [
        (
            r["payment_id"],
            r["kind"],
            r["at"],
            r["amount"],
            r["currency"],
            r["reference"],
            r["request_id"],
            r["reason"],
            r["retryable"],
            r["applied"],
        )
        for r in _rows(services, "SELECT * FROM {schema}.payments ORDER BY at, event_version")
    ]


def _allocations(services: Services) -> list[tuple[Any, ...]]:
    return [
        (r["payment_id"], r["reference"], r["amount"], r["currency"], r["from_credit"], r["at"])
        for r in _rows(
            services,
            "SELECT * FROM {schema}.payment_allocations ORDER BY event_version, position",
        )
    ]


def _credit(services: Services) -> list[tuple[Any, ...]]:
    return [
        (r["currency"], r["reason"], r["amount"], r["pieces"])
        for r in _rows(services, "SELECT * FROM {schema}.payment_credit ORDER BY 1, 2, 3")
    ]


def _snapshot(services: Services) -> dict[str, list[dict[str, Any]]]:
    return {
        table: _rows(services, f"SELECT * FROM {{schema}}.{table} ORDER BY 1, 2, 3")
        for table in ("payments", "payment_allocations", "payment_credit")
    }


class Books:
    """The upstreams and one consumer for a test (a new group member joins slowly)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.up = Upstreams(services)
        self.consumer = services.consumer()

    def deliver(self, *messages: Outgoing) -> None:
        """Publish, consume everything, and bring the read models up to date."""
        self.up.publish(list(messages))
        self.consumer.drain(timeout=60)
        catch_up(self.services)

    def close(self, at: datetime) -> None:
        self.services.close_periods(at)
        catch_up(self.services)


@pytest.fixture
def books(make_services: MakeServices) -> Iterator[Books]:
    """ "p" (email-starter, postpay, opened 2026-10-01, tax 21%) and its October invoice
    2026-000001 (12.10, due 2026-11-15)."""
    made = Books(make_services())
    made.deliver(made.up.opened("p", utc(2026, 10, 1), tax_rate="0.21"))
    made.close(OCT_CLOSE)
    yield made
    made.consumer.close()
    made.up.close()


def test_each_payment_its_allocations_and_the_credit_held_are_rows(books: Books) -> None:
    services, up = books.services, books.up
    books.deliver(
        up.payment("p", "5.00", utc(2026, 11, 5), "2026-000001", event_id="pay-1"),
        up.payment("p", "20.00", utc(2026, 11, 9), "2026-000001", event_id="pay-2"),
        up.payment_failed(
            "p", "12.10", utc(2026, 11, 10), "2026-000001", "card declined", retryable=False
        ),
        up.payment("p", "3.00", utc(2026, 11, 12), currency="USD", event_id="pay-3"),
    )
    [failed_id] = [p[0] for p in _payments(services) if p[1] == "failed"]
    # pay-1 pays 5.00 of 12.10; pay-2 the 7.10 left, and its other 12.90 is held as an
    # overpayment; the failure moves nothing; the USD money is held as it is.
    assert _payments(services) == [
        (
            f"{BRIDGE} pay-1",
            "succeeded",
            utc(2026, 11, 5),
            D("5.00"),
            "EUR",
            "2026-000001",
            None,
            None,
            None,
            D("5.00"),
        ),
        (
            f"{BRIDGE} pay-2",
            "succeeded",
            utc(2026, 11, 9),
            D("20.00"),
            "EUR",
            "2026-000001",
            None,
            "overpayment",
            None,
            D("7.10"),
        ),
        (
            failed_id,
            "failed",
            utc(2026, 11, 10),
            D("12.10"),
            "EUR",
            "2026-000001",
            None,
            "card declined",
            False,
            None,
        ),
        (
            f"{BRIDGE} pay-3",
            "succeeded",
            utc(2026, 11, 12),
            D("3.00"),
            "USD",
            None,
            None,
            "other_currency",
            None,
            D("0"),
        ),
    ]
    assert _credit(services) == [
        ("EUR", "overpayment", D("12.90"), 1),
        ("USD", "other_currency", D("3.00"), 1),
    ]

    # November's 12.10 is paid at the close from pay-2's credit: 12.90 - 12.10 = 0.80 left.
    books.close(NOV_CLOSE)
    assert _allocations(services) == [
        (f"{BRIDGE} pay-1", "2026-000001", D("5.00"), "EUR", None, utc(2026, 11, 5)),
        (f"{BRIDGE} pay-2", "2026-000001", D("7.10"), "EUR", None, utc(2026, 11, 9)),
        (f"{BRIDGE} pay-2", "2026-000002", D("12.10"), "EUR", "overpayment", NOV_CLOSE),
    ]
    assert _credit(services) == [
        ("EUR", "overpayment", D("0.80"), 1),
        ("USD", "other_currency", D("3.00"), 1),
    ]

    report = services.payment_reports().payments_of("p")
    assert [(p["kind"], p["amount"], p["applied"]) for p in report["payments"]] == [
        ("succeeded", "5.00", "5.00"),
        ("succeeded", "20.00", "7.10"),
        ("failed", "12.10", None),
        ("succeeded", "3.00", "0.00"),
    ]
    # pay-2's allocations: the one at receipt and the one from its credit at the close.
    assert [
        (a["reference"], a["amount"], a["from_credit"])
        for a in report["payments"][1]["allocations"]
    ] == [("2026-000001", "7.10", None), ("2026-000002", "12.10", "overpayment")]
    assert [(c["currency"], c["reason"], c["amount"]) for c in report["credit_held"]] == [
        ("EUR", "overpayment", "0.80"),
        ("USD", "other_currency", "3.00"),
    ]

    live = _snapshot(services)
    services.read_models().rebuild(batch_size=1)
    assert _snapshot(services) == live
    services.read_models().rebuild()
    assert _snapshot(services) == live


def test_an_operators_mark_paid_is_a_payment_of_its_own_kind(books: Books) -> None:
    services, up = books.services, books.up
    books.deliver(up.opened("c", utc(2026, 10, 2), plan="contacts-basic"))
    books.close(utc(2026, 11, 2, 7))  # c's first proforma, PF-c-0001, 19.00
    services.pay_proforma("c", "PF-c-0001", utc(2026, 11, 2, 8))
    catch_up(services)
    report = services.payment_reports().payments_of("c")
    assert [
        (p["payment_id"], p["kind"], p["amount"], p["reference"], p["applied"])
        for p in report["payments"]
    ] == [("mark-paid:PF-c-0001", "mark_paid", "19.00", "PF-c-0001", "19.00")]
    assert report["credit_held"] == []


def test_receivables_by_age_as_of_a_date(books: Books) -> None:
    services, up = books.services, books.up
    books.deliver(up.opened("c", utc(2026, 10, 2), plan="contacts-basic"))
    books.close(utc(2026, 11, 1, 8))  # PF-c-0001 19.00, issued and due Nov 1
    # 5.00 of 2026-000001 on Nov 20; PF-c-0001 paid on Nov 2 (its invoice: 2026-000002).
    books.deliver(
        up.payment("p", "5.00", utc(2026, 11, 20), "2026-000001"),
        up.payment("c", "19.00", utc(2026, 11, 2, 9), "PF-c-0001"),
    )
    reports = services.payment_reports()

    def open_at(day: date) -> list[tuple[str, str, str, str, str]]:
        report = reports.receivables(day)
        return [
            (a["account_id"], a["current"], a["days_1_30"], a["days_31_60"], a["total"])
            for a in report["accounts"]
        ]

    assert open_at(date(2026, 10, 31)) == []  # nothing issued yet
    # Nov 1: both just issued; the proforma due that day, the invoice on Nov 15.
    assert open_at(date(2026, 11, 1)) == [
        ("c", "19.00", "0.00", "0.00", "19.00"),
        ("p", "12.10", "0.00", "0.00", "12.10"),
    ]
    assert open_at(date(2026, 11, 2)) == [("p", "12.10", "0.00", "0.00", "12.10")]
    assert open_at(date(2026, 11, 15)) == [("p", "12.10", "0.00", "0.00", "12.10")]  # due today
    assert open_at(date(2026, 11, 19)) == [("p", "0.00", "12.10", "0.00", "12.10")]  # 4 days
    assert open_at(date(2026, 11, 20)) == [("p", "0.00", "7.10", "0.00", "7.10")]  # paid 5.00

    books.close(NOV_CLOSE)  # 2026-000003, 12.10 due Dec 15; PF-c-0002 19.00 due Dec 1
    # Dec 31: 2026-000001 46 days past due (7.10), 2026-000003 16 (12.10); PF-c-0002 30.
    report = reports.receivables(date(2026, 12, 31))
    assert [
        (a["account_id"], a["days_1_30"], a["days_31_60"], a["total"]) for a in report["accounts"]
    ] == [("c", "19.00", "0.00", "19.00"), ("p", "12.10", "7.10", "19.20")]
    assert [
        (d["number"], d["days_past_due"], d["bucket"], d["open"])
        for d in report["accounts"][1]["documents"]
    ] == [("2026-000001", 46, "days_31_60", "7.10"), ("2026-000003", 16, "days_1_30", "12.10")]
    # 19.00 + 12.10 = 31.10 at 1-30 days, 7.10 at 31-60: 38.20 EUR in all.
    assert report["totals"] == [
        {
            "currency": "EUR",
            "current": "0.00",
            "days_1_30": "31.10",
            "days_31_60": "7.10",
            "days_61_90": "0.00",
            "days_over_90": "0.00",
            "total": "38.20",
        }
    ]


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (-3, "current"),
        (0, "current"),
        (1, "days_1_30"),
        (30, "days_1_30"),
        (31, "days_31_60"),
        (60, "days_31_60"),
        (61, "days_61_90"),
        (90, "days_61_90"),
        (91, "days_over_90"),
    ],
)
def test_age_buckets_by_days_past_due(days: int, bucket: str) -> None:
    assert age_bucket(days) == bucket


def test_a_replaced_proforma_is_owed_until_its_replacement_is_issued(books: Books) -> None:
    """ "c" (contacts-basic, opened Oct 2, no contact): the close of Nov 2 07:00 issues
    PF-c-0001 (the opening, paid at once) and PF-c-0002 (the Nov 2 renewal, 19.00); a
    change to contacts-pro dated Nov 1 arrives after that renewal was priced, so the
    close of Nov 3 replaces PF-c-0002 by PF-c-0003 (contacts-pro tier 1: 49.00)."""
    services, up = books.services, books.up
    books.deliver(up.opened("c", utc(2026, 10, 2), plan="contacts-basic"))
    books.close(utc(2026, 11, 2, 7))
    services.pay_proforma("c", "PF-c-0001", utc(2026, 11, 2, 8))
    books.deliver(up.plan_changed("c", "contacts-pro", utc(2026, 11, 1)))
    books.close(utc(2026, 11, 3, 7))
    document = services.reports().document("PF-c-0002")
    assert (document["status"], document["settled_by"]) == ("replaced", "PF-c-0003")

    def owed(day: date) -> list[tuple[str, str, int, str]]:
        [account] = services.payment_reports().receivables(day, "c")["accounts"]
        return [
            (d["number"], d["open"], d["days_past_due"], d["bucket"]) for d in account["documents"]
        ]

    assert owed(date(2026, 11, 2)) == [("PF-c-0002", "19.00", 0, "current")]
    assert owed(date(2026, 11, 3)) == [("PF-c-0003", "49.00", 0, "current")]
    assert owed(date(2026, 11, 10)) == [("PF-c-0003", "49.00", 7, "days_1_30")]
