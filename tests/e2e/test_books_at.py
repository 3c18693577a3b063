"""The books at a time on both axes (``--as-of`` business time, ``--known-at``
recording time), replayed from the stored events.

acme (postpaid, starter: 10.00 a month, 1,000 emails included, then 0.0010 an
email) opens on 1 October and sends 1,200 emails on 15 October; October is
closed on 1 November 07:00 (invoice 2026-000001: 10.00 + 200 x 0.0010 = 10.20),
which also opens November (10.00). Only then, 5 emails dated 20 October arrive
(late usage, 5 x 0.0010 = 0.0050), 30 November emails (included), a payment of
10.20 for the invoice dated 5 November, and a change to the volume plan dated 20
November (no charge of its own: November's fee was the starter's, taken when the
month opened, and no email is sent after it).

The recording times are this test's own clock: ``known`` is taken after the
close and before the late emails.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, ledger_command, ledger_env, utc

END_OF_OCTOBER = "2026-10-31T23:59:59Z"


class Books:
    def __init__(self, services: Services, known: str) -> None:
        self.env, self.known = ledger_env(services.settings), known

    def read(self, *args: str) -> Any:
        result = ledger_command(*args, "--json", env=self.env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def drain(services: Services) -> None:
    consumer = services.consumer()
    consumer.drain(timeout=60)
    consumer.close()


@pytest.fixture(scope="module")
def books(module_services: MakeServices) -> Books:
    """Built once: every test here only reads them."""
    services = module_services()
    up = Upstreams(services)
    up.publish([up.opened("acme", utc(2026, 10, 1)), *up.emails("acme", 1200, utc(2026, 10, 15))])
    drain(services)
    services.close_periods(utc(2026, 11, 1, 7))
    known = datetime.now(UTC).isoformat()
    up.publish(
        [
            *up.emails("acme", 5, utc(2026, 10, 20)),
            *up.emails("acme", 30, utc(2026, 11, 10)),
            up.payment("acme", "10.20", utc(2026, 11, 5), reference="2026-000001"),
            up.plan_changed("acme", "email-volume", utc(2026, 11, 20)),
        ]
    )
    drain(services)
    catch_up(services)
    up.close()
    return Books(services, known)


def october(rows: list[dict[str, Any]]) -> dict[str, Any]:
    (row,) = [r for r in rows if r["month"] == "2026-10"]
    return row


def test_a_late_email_is_in_october_as_of_its_end_but_not_as_known_then(books: Books) -> None:
    known = october(books.read("usage", "acme", "--known-at", books.known))
    as_of = october(books.read("usage", "acme", "--as-of", END_OF_OCTOBER))
    live = october(books.read("usage", "acme"))
    assert (known["platform_emails"], known["late_emails"]) == (1200, 0)
    assert (as_of["platform_emails"], as_of["late_emails"]) == (1200, 5)
    assert (live["platform_emails"], live["late_emails"]) == (1200, 5)


def test_the_balance_on_each_axis(books: Books) -> None:
    # Business time, end of October: October's fee and its 1,205 emails (late ones
    # included), not November's fee (opened on 1 November) nor the invoice.
    assert books.read("balance", "acme", "--as-of", END_OF_OCTOBER)["balance_exact"] == ("-10.2050")
    # Recorded by ``known``: both fees and October's 1,200 emails, not the late five.
    assert books.read("balance", "acme", "--known-at", books.known)["balance_exact"] == ("-20.2000")
    assert books.read("balance", "acme")["balance_exact"] == "-20.2050"


def test_the_plan_on_each_axis(books: Books) -> None:
    plan = "plan_id"
    assert books.read("balance", "acme", "--as-of", "2026-11-19T23:59:59Z")[plan] == "email-starter"
    assert books.read("balance", "acme", "--as-of", "2026-11-20T00:00:00Z")[plan] == "email-volume"
    assert books.read("balance", "acme", "--known-at", books.known)[plan] == "email-starter"
    assert books.read("balance", "acme")[plan] == "email-volume"


def test_the_invoice_is_open_before_its_payment_and_paid_after(books: Books) -> None:
    before = books.read("invoices", "acme", "--as-of", "2026-11-04T00:00:00Z")
    after = books.read("invoices", "acme", "--as-of", "2026-11-06T00:00:00Z")
    assert [(d["number"], d["status"], d["total"]) for d in before] == [
        ("2026-000001", "open", "10.20")
    ]
    assert [(d["number"], d["status"], d["total"]) for d in after] == [
        ("2026-000001", "paid", "10.20")
    ]
    # Before the close, as known then or as true then, there is no invoice at all.
    assert books.read("invoices", "acme", "--as-of", END_OF_OCTOBER) == []


def test_an_unknown_account_is_one_line(books: Books) -> None:
    result = ledger_command("balance", "nobody", "--as-of", END_OF_OCTOBER, env=books.env)
    assert (result.returncode, result.stderr.strip()) == (1, "error: unknown account 'nobody'")
