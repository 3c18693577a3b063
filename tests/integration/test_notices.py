"""The notices read model and the accounts' dunning states, from the stored
``DunningChanged`` events, through the real broker and PostgreSQL.

Worked out by hand. "card" (contacts-basic, no billable contact, tax 0) opens on
2026-10-15 10:00Z: its first proforma PF-card-0001 is 19.00 EUR, issued at the
close of 16:00Z, attempt 1 due then. The policy (plans/dunning.toml) retries 1, 3,
5 and 7 days after the first failure, at its clock time. "late" (email-starter,
postpay, tax 0) opens on 2026-09-05: September's invoice 2026-000001 (the fee,
10.00) is issued at the close of 2026-10-01 07:00, due 2026-10-15, overdue from
2026-10-16 00:00Z. Time is driven through the scheduler's ``now``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from consumers.upstream_publisher import Outgoing
from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, utc

CARD = "PF-card-0001"
FAILED = f"{CARD}/payment_failed"
OVERDUE = "2026-000001/overdue"


class Chase:
    """The upstreams, one consumer and the scheduler of a test."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.up = Upstreams(services)
        self.consumer = services.consumer()

    def deliver(self, *messages: Outgoing) -> None:
        self.up.publish(list(messages))
        self.consumer.drain(timeout=60)
        catch_up(self.services)

    def collect(self, at: datetime) -> list[str]:
        requested = [r.request_id for _, r in self.services.collect(at).requests]
        catch_up(self.services)
        return requested

    def failed(self, attempt: int, at: datetime, reason: str) -> Outgoing:
        request = f"{CARD}/attempt-{attempt}"
        return self.up.payment_failed("card", "19.00", at, CARD, reason, request_id=request)

    def notices(self, account: str | None = None, open_only: bool = False) -> list[Any]:
        found = self.services.payment_reports().notices(account, open_only)["notices"]
        return [
            (
                n["notice_id"],
                n["state"],
                n["amount_due"],
                n["attempt"],
                n["reason"],
                n["next_attempt_at"],
                n["opened_at"],
                n["resolved_at"],
            )
            for n in found
        ]

    def dunning(self, account: str) -> tuple[Any, ...]:
        [row] = self.services.payment_reports().notices(account)["dunning"]
        return row["state"], row["since"], row["reference"]


@pytest.fixture
def chase(make_services: MakeServices) -> Iterator[Chase]:
    made = Chase(make_services())
    made.deliver(
        made.up.opened("late", utc(2026, 9, 5)),
        made.up.opened("card", utc(2026, 10, 15, 10), plan="contacts-basic"),
    )
    yield made
    made.consumer.close()
    made.up.close()


def _table(services: Services, name: str) -> list[dict[str, Any]]:
    return services.payment_reports().rows.rows(f"SELECT * FROM {{schema}}.{name} ORDER BY 1, 2")


def test_notices_open_update_and_resolve_with_the_chase(chase: Chase) -> None:
    services = chase.services
    assert [d.number for d in services.close_periods(utc(2026, 10, 1, 7))] == ["2026-000001"]
    assert [d.number for d in services.close_periods(utc(2026, 10, 15, 16))] == [CARD]
    catch_up(services)
    # Issued, not attempted: no notice, and the account is current.
    assert chase.notices() == []
    assert chase.dunning("card") == ("current", None, None)
    assert chase.collect(utc(2026, 10, 15, 16)) == [f"{CARD}/attempt-1"]
    assert chase.notices() == []  # requested, not answered

    chase.deliver(chase.failed(1, utc(2026, 10, 15, 17), "insufficient funds"))
    # Opened by the failure; attempt 2 due a day after it, at 17:00.
    opened = (FAILED, "open", "19.00", 1, "insufficient funds")
    assert chase.notices("card") == [(*opened, utc(2026, 10, 16, 17), utc(2026, 10, 15, 17), None)]
    assert chase.dunning("card") == ("past_due", utc(2026, 10, 15, 17), CARD)

    # The retry is not due yet, and "late" is not overdue before Oct 16 00:00: nothing new.
    assert chase.collect(utc(2026, 10, 15, 23, 59)) == []
    assert len(chase.notices()) == 1
    assert chase.collect(utc(2026, 10, 16, 17)) == [f"{CARD}/attempt-2"]
    # "late" is overdue from local midnight after its due date (UTC here).
    overdue = (OVERDUE, "open", "10.00", None, "unpaid past its due date 2026-10-15")
    assert chase.notices("late") == [(*overdue, None, utc(2026, 10, 16), None)]
    assert chase.dunning("late") == ("past_due", utc(2026, 10, 16), "2026-000001")

    chase.deliver(chase.failed(2, utc(2026, 10, 16, 18), "card expired"))
    # Updated in place: attempt 2's reason; attempt 3 due 3 days after the first failure.
    updated = (FAILED, "open", "19.00", 2, "card expired")
    assert chase.notices("card") == [(*updated, utc(2026, 10, 18, 17), utc(2026, 10, 15, 17), None)]

    assert chase.collect(utc(2026, 10, 18, 17)) == [f"{CARD}/attempt-3"]
    chase.deliver(
        chase.up.payment(
            "card", "19.00", utc(2026, 10, 18, 18), CARD, request_id=f"{CARD}/attempt-3"
        ),
        # attempt 2's failure once more, after attempt 3 paid: it reopens nothing
        chase.failed(2, utc(2026, 10, 18, 19), "card expired"),
        chase.up.payment("late", "10.00", utc(2026, 10, 20, 9), "2026-000001"),
    )
    assert chase.notices(open_only=True) == []
    # Oldest first: card's opened on Oct 15, late's on Oct 16.
    assert chase.notices() == [
        (
            FAILED,
            "resolved",
            "19.00",
            2,
            "card expired",
            utc(2026, 10, 18, 17),
            utc(2026, 10, 15, 17),
            utc(2026, 10, 18, 18),
        ),
        (
            OVERDUE,
            "resolved",
            "10.00",
            None,
            "unpaid past its due date 2026-10-15",
            None,
            utc(2026, 10, 16),
            utc(2026, 10, 20, 9),
        ),
    ]
    assert chase.dunning("card") == ("current", utc(2026, 10, 18, 18), CARD)
    assert chase.dunning("late") == ("current", utc(2026, 10, 20, 9), "2026-000001")
    # Of all accounts, only those not current are listed with their state.
    assert services.payment_reports().notices()["dunning"] == []

    live = {name: _table(services, name) for name in ("notices", "dunning")}
    assert [r["state"] for r in live["notices"]] == ["resolved", "resolved"]
    services.read_models().rebuild(batch_size=1)
    assert {name: _table(services, name) for name in live} == live
    services.read_models().rebuild()
    assert {name: _table(services, name) for name in live} == live


def test_a_hard_decline_suspends_with_a_notice_that_a_payment_resolves(chase: Chase) -> None:
    services = chase.services
    services.close_periods(utc(2026, 10, 15, 16))
    chase.collect(utc(2026, 10, 15, 16))
    decline = chase.up.payment_failed(
        "card",
        "19.00",
        utc(2026, 10, 15, 17),
        CARD,
        "card stolen",
        request_id=f"{CARD}/attempt-1",
        retryable=False,
    )
    chase.deliver(decline)
    assert [(n[0], n[1], n[3], n[5]) for n in chase.notices("card")] == [
        (FAILED, "open", 1, None),  # no retry after a hard decline
        (f"{CARD}/suspended", "open", 1, None),
    ]
    state, since, reference = chase.dunning("card")
    assert (state, since, reference) == ("suspended", utc(2026, 10, 15, 17), CARD)
    listed = services.payment_reports().notices()["dunning"]
    assert [(d["account_id"], d["state"]) for d in listed] == [("card", "suspended")]

    chase.deliver(chase.up.payment("card", "19.00", utc(2026, 10, 17, 12), CARD))
    assert [(n[0], n[1], n[7]) for n in chase.notices("card")] == [
        (FAILED, "resolved", utc(2026, 10, 17, 12)),
        (f"{CARD}/suspended", "resolved", utc(2026, 10, 17, 12)),
    ]
    assert chase.dunning("card")[0] == "current"
    amounts = {r["notice_id"]: r["amount_due"] for r in _table(services, "notices")}
    assert amounts == {FAILED: Decimal("19.00"), f"{CARD}/suspended": Decimal("19.00")}
