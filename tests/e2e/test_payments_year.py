"""A year of money in through the real broker and PostgreSQL: documents, payments,
notices and dunning states exactly as worked out by hand.

"shop" (contacts-basic, no billable contact, tax 0) opens 2026-01-15 10:00Z: every
renewal, on the 15th, is a 19.00 EUR proforma PF-shop-00NN issued at the close of
16:00Z, collected by card (attempt 1 requested then; the policy retries 1, 3, 5 and
7 days after the first failure, at its clock time). Its answers:

- January, April and June to December: attempt 1 paid at 18:00;
- February: attempt 1 fails at 17:00; attempt 2 (Feb 16 17:00) is paid at 18:00;
- March: attempts 1 and 2 fail (Mar 15 17:00, Mar 16 18:00); attempt 3 (Mar 15 17:00
  + 3 days) is paid on Mar 18 at 18:00; attempt 2's failure arrives once more at
  19:00, after that payment, and reopens nothing;
- May: attempt 1 is declined for good (17:00): suspended; paid by transfer May 20.

"post" (email-starter, postpay, no emails, tax 0) opens 2026-01-01: each month's
invoice is the fee, 10.00 EUR, issued at the close of the 1st 07:00Z, due on the
15th, overdue from the 16th 00:00Z, suspending 14 days later. It pays on the 10th,
except: February's invoice late (Mar 20); March's in two parts (4.00 Apr 10, 6.00
Apr 25, after it was overdue); April's twice (May 5 and May 6: the second 10.00 is
held as already paid and pays May's invoice when it is issued on Jun 1); June's
not until it suspended the account (Jul 30), then 20.00 on Aug 3 naming it, which
also pays July's invoice (issued Aug 1).

Numbers are gapless in the order documents are issued: a final invoice when its
proforma is paid, a postpay invoice at the close (table in ``NUMBERS``). Every
payment message is published twice, and all of them again at the end of the year:
each is applied once.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from consumers.upstream_publisher import Outgoing
from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, utc

D = Decimal


def pf(month: int) -> str:
    return f"PF-shop-{month:04d}"


def req(month: int, attempt: int) -> str:
    return f"{pf(month)}/attempt-{attempt}"


def inv(n: int) -> str:
    return f"2026-{n:06d}"


#: Each proforma's final invoice, and each month's postpay invoice (by the month it
#: bills): issued in this order through the year.
FINAL = {1: 1, 2: 3, 3: 5, 4: 7, 5: 9, 6: 11, 7: 13, 8: 15, 9: 17, 10: 19, 11: 21, 12: 23}
POSTPAY = {1: 2, 2: 4, 3: 6, 4: 8, 5: 10, 6: 12, 7: 14, 8: 16, 9: 18, 10: 20, 11: 22}


class Year:
    def __init__(self, services: Services) -> None:
        # The consumer's clock: after the year (its facts are not future events).
        services.clock = lambda: utc(2027, 1, 1)
        self.services = services
        self.up = Upstreams(services)
        self.consumer = services.consumer()
        self.payments: list[Outgoing] = []
        self.requested: list[str] = []

    def deliver(self, *messages: Outgoing) -> None:
        """Each message twice (an upstream retry): applied once."""
        self.payments.extend(messages)
        self.up.publish([m for m in messages for _ in range(2)])
        self.consumer.drain(timeout=60)

    def tick(self, at: datetime) -> None:
        """The scheduler at ``at``: the close, then the collection and dunning scan."""
        self.services.close_periods(at)
        self.requested += [r.request_id for _, r in self.services.collect(at).requests]

    def paid(self, month: int, attempt: int, at: datetime, amount: str = "19.00") -> Outgoing:
        return self.up.payment("shop", amount, at, pf(month), request_id=req(month, attempt))

    def failed(self, month: int, attempt: int, at: datetime, reason: str, **data: Any) -> Outgoing:
        return self.up.payment_failed(
            "shop", "19.00", at, pf(month), reason, request_id=req(month, attempt), **data
        )

    def pays(self, amount: str, at: datetime, number: int) -> Outgoing:
        return self.up.payment("post", amount, at, inv(number))

    def state(self, account: str) -> str:
        catch_up(self.services)
        [row] = self.services.payment_reports().notices(account)["dunning"]
        return str(row["state"])

    def notices(self) -> list[tuple[Any, ...]]:
        catch_up(self.services)
        return [
            (
                n["account_id"],
                n["notice_id"],
                n["amount_due"],
                n["attempt"],
                n["reason"],
                n["next_attempt_at"],
                n["opened_at"],
                n["resolved_at"],
            )
            for n in self.services.payment_reports().notices()["notices"]
        ]


def _year(year: Year) -> None:
    up = year.up
    year.deliver(
        up.opened("post", utc(2026, 1, 1)),
        up.opened("shop", utc(2026, 1, 15, 10), plan="contacts-basic"),
    )
    for month in range(1, 13):
        if month > 1:
            year.tick(utc(2026, month, 1, 7))  # post's invoice of the month before
        _postpay_pays(year, month)
        year.tick(utc(2026, month, 15, 16))  # shop's proforma, attempt 1 requested
        if month == 2:
            # Requested, not answered yet: no notice exists before an attempt failed.
            assert year.notices() == [] and year.state("shop") == "current"
        _shop_answers(year, month)
    # Every payment message once more, at the end of the year: nothing changes.
    year.up.publish(year.payments)
    year.consumer.drain(timeout=60)
    catch_up(year.services)


def _postpay_pays(year: Year, month: int) -> None:
    """What "post" pays after the close of the 1st of ``month``."""
    if month == 1:
        return
    billed = month - 1  # the month the invoice issued today bills
    if billed == 2:  # late: overdue from Mar 16 00:00 (the scan of Mar 16 records it)
        return
    if billed == 3:  # in two parts: 6.00 left when it becomes overdue on Apr 16
        year.deliver(year.pays("4.00", utc(2026, 4, 10, 9), POSTPAY[3]))
        return
    if billed == 4:  # twice: the second is held, and pays May's invoice on Jun 1
        year.deliver(
            year.pays("10.00", utc(2026, 5, 5, 9), POSTPAY[4]),
            year.pays("10.00", utc(2026, 5, 6, 9), POSTPAY[4]),
        )
        return
    if billed in (5, 6):  # May's paid by that credit; June's left unpaid
        return
    if billed == 7:  # June's and July's, by one payment naming June's
        assert year.state("post") == "suspended"
        year.deliver(year.pays("20.00", utc(2026, 8, 3, 9), POSTPAY[6]))
        return
    year.deliver(year.pays("10.00", utc(2026, month, 10, 9), POSTPAY[billed]))


def _shop_answers(year: Year, month: int) -> None:
    """The bridge's answers to shop's proforma of ``month`` (and the scans between)."""
    if month == 2:
        year.deliver(year.failed(2, 1, utc(2026, 2, 15, 17), "insufficient funds"))
        year.tick(utc(2026, 2, 16, 17))  # attempt 2, a day after the failure
        year.deliver(year.paid(2, 2, utc(2026, 2, 16, 18)))
    elif month == 3:
        year.deliver(year.failed(3, 1, utc(2026, 3, 15, 17), "insufficient funds"))
        year.tick(utc(2026, 3, 16, 17))  # attempt 2; post's February invoice overdue
        year.deliver(year.failed(3, 2, utc(2026, 3, 16, 18), "card expired"))
        year.tick(utc(2026, 3, 18, 17))  # attempt 3, 3 days after the first failure
        year.deliver(
            year.paid(3, 3, utc(2026, 3, 18, 18)),
            year.failed(3, 2, utc(2026, 3, 18, 19), "card expired"),  # stale: ignored
        )
        year.deliver(year.pays("10.00", utc(2026, 3, 20, 9), POSTPAY[2]))
    elif month == 4:
        year.deliver(year.paid(4, 1, utc(2026, 4, 15, 18)))
        year.tick(utc(2026, 4, 16, 12))  # post's March invoice overdue, 6.00 due
        year.deliver(year.pays("6.00", utc(2026, 4, 25, 9), POSTPAY[3]))
    elif month == 5:
        year.deliver(year.failed(5, 1, utc(2026, 5, 15, 17), "card stolen", retryable=False))
        assert year.state("shop") == "suspended"
        year.deliver(year.up.payment("shop", "19.00", utc(2026, 5, 20, 12), pf(5)))
        assert year.state("shop") == "current"
    elif month == 7:
        year.deliver(year.paid(7, 1, utc(2026, 7, 15, 18)))
        year.tick(utc(2026, 7, 16, 12))  # post's June invoice overdue
        assert year.state("post") == "past_due"
        year.tick(utc(2026, 7, 30, 12))  # 14 days after: suspended
    else:
        year.deliver(year.paid(month, 1, utc(2026, month, 15, 18)))


def test_a_year_of_card_collections_and_postpay_invoices(make_services: MakeServices) -> None:
    services = make_services(topic_partitions=1)
    year = Year(services)
    try:
        _year(year)
    finally:
        year.consumer.close()
        year.up.close()
    reports = services.reports()

    # Documents: every proforma paid, by its final invoice; every postpay invoice paid.
    shop = {d["number"]: d for d in reports.documents_of("shop")}
    assert {
        n: (d["status"], d["settled_by"]) for n, d in shop.items() if d["kind"] == "proforma"
    } == {pf(m): ("paid", inv(FINAL[m])) for m in range(1, 13)}
    finals = {n: (d["total"], d["proforma"]) for n, d in shop.items() if d["kind"] == "invoice"}
    assert finals == {inv(FINAL[m]): (D("19.00"), pf(m)) for m in range(1, 13)}
    post = {d["number"]: (d["total"], d["status"], d["paid"]) for d in reports.documents_of("post")}
    assert post == {inv(POSTPAY[m]): (D("10.00"), "paid", D("10.00")) for m in range(1, 12)}
    # Gapless: 23 numbers, 2026-000001 .. 2026-000023, each on one document.
    assert sorted([*finals, *post]) == [inv(n) for n in range(1, 24)]

    # Collection requests: attempt 1 of each proforma, 2 of February's, 2 and 3 of March's.
    assert sorted(year.requested) == sorted(
        [*(req(m, 1) for m in range(1, 13)), req(2, 2), req(3, 2), req(3, 3)]
    )

    # Payments, each applied once: shop 12 paid and 5 failed (one of them stale), post 11.
    payments = services.payment_reports()
    shop_payments = payments.payments_of("shop")["payments"]
    assert sorted((p["kind"], p["amount"]) for p in shop_payments) == sorted(
        [("succeeded", "19.00")] * 12 + [("failed", "19.00")] * 5
    )
    post_payments = payments.payments_of("post")
    assert [
        (p["at"], p["amount"], p["applied"], p["reason"]) for p in post_payments["payments"]
    ] == [
        (utc(2026, 2, 10, 9), "10.00", "10.00", None),
        (utc(2026, 3, 20, 9), "10.00", "10.00", None),
        (utc(2026, 4, 10, 9), "4.00", "4.00", None),
        (utc(2026, 4, 25, 9), "6.00", "6.00", None),
        (utc(2026, 5, 5, 9), "10.00", "10.00", None),
        (utc(2026, 5, 6, 9), "10.00", "0.00", "already_paid"),
        (utc(2026, 8, 3, 9), "20.00", "20.00", "overpayment"),
        *((utc(2026, m, 10, 9), "10.00", "10.00", None) for m in range(9, 13)),
    ]
    # May 6's money went to May's invoice at the Jun 1 close; Aug 3's half to July's.
    allocations = {
        p["at"]: [(a["reference"], a["amount"], a["from_credit"]) for a in p["allocations"]]
        for p in post_payments["payments"]
    }
    assert allocations[utc(2026, 5, 6, 9)] == [(inv(POSTPAY[5]), "10.00", "already_paid")]
    assert allocations[utc(2026, 8, 3, 9)] == [
        (inv(POSTPAY[6]), "10.00", None),
        (inv(POSTPAY[7]), "10.00", "overpayment"),
    ]
    assert post_payments["credit_held"] == [] and payments.payments_of("shop")["credit_held"] == []

    # Notices, oldest first, all resolved; none before an attempt failed or a due date passed.
    declined = (
        f"attempt 1 to collect 19.00 EUR for {pf(5)} was declined, not to be retried: card stolen"
    )
    long_overdue = f"{inv(12)} (10.00 EUR due) unpaid 14 days after its due date 2026-07-15"
    assert year.notices() == [
        (
            "shop",
            f"{pf(2)}/payment_failed",
            "19.00",
            1,
            "insufficient funds",
            utc(2026, 2, 16, 17),
            utc(2026, 2, 15, 17),
            utc(2026, 2, 16, 18),
        ),
        (
            "shop",
            f"{pf(3)}/payment_failed",
            "19.00",
            2,
            "card expired",
            utc(2026, 3, 18, 17),
            utc(2026, 3, 15, 17),
            utc(2026, 3, 18, 18),
        ),
        (
            "post",
            f"{inv(4)}/overdue",
            "10.00",
            None,
            "unpaid past its due date 2026-03-15",
            None,
            utc(2026, 3, 16),
            utc(2026, 3, 20, 9),
        ),
        (
            "post",
            f"{inv(6)}/overdue",
            "6.00",
            None,
            "unpaid past its due date 2026-04-15",
            None,
            utc(2026, 4, 16),
            utc(2026, 4, 25, 9),
        ),
        (
            "shop",
            f"{pf(5)}/payment_failed",
            "19.00",
            1,
            "card stolen",
            None,
            utc(2026, 5, 15, 17),
            utc(2026, 5, 20, 12),
        ),
        (
            "shop",
            f"{pf(5)}/suspended",
            "19.00",
            1,
            declined,
            None,
            utc(2026, 5, 15, 17),
            utc(2026, 5, 20, 12),
        ),
        (
            "post",
            f"{inv(12)}/overdue",
            "10.00",
            None,
            "unpaid past its due date 2026-07-15",
            None,
            utc(2026, 7, 16),
            utc(2026, 8, 3, 9),
        ),
        (
            "post",
            f"{inv(12)}/suspended",
            "10.00",
            None,
            long_overdue,
            None,
            utc(2026, 7, 30),
            utc(2026, 8, 3, 9),
        ),
    ]
    dunning = {a: payments.notices(a)["dunning"][0] for a in ("shop", "post")}
    assert {a: (d["state"], d["since"], d["reference"]) for a, d in dunning.items()} == {
        "shop": ("current", utc(2026, 5, 20, 12), pf(5)),
        "post": ("current", utc(2026, 8, 3, 9), inv(12)),
    }
    # Nothing is owed at the end of the year; on Jul 31, June's invoice, 16 days late.
    assert payments.receivables(datetime(2026, 12, 31).date())["accounts"] == []
    [july] = payments.receivables(datetime(2026, 7, 31).date())["accounts"]
    assert (july["account_id"], july["days_1_30"], july["total"]) == ("post", "10.00", "10.00")

    # The read models rebuilt from the year's history are the live ones, row for row.
    tables = ("payments", "payment_allocations", "payment_credit", "notices", "dunning")
    rows = payments.rows.rows

    def snapshot() -> dict[str, list[dict[str, Any]]]:
        return {t: rows(f"SELECT * FROM {{schema}}.{t} ORDER BY 1, 2, 3") for t in tables}

    live = snapshot()
    assert (len(live["payments"]), len(live["notices"]), len(live["dunning"])) == (28, 8, 2)
    services.read_models().rebuild()
    assert snapshot() == live
