"""``ledger payments`` and ``ledger receivables`` as a user runs them: JSON, tables
that fit 80 columns, one-line errors.

Amounts by hand: "p" (email-starter, postpay, tax 21%, no emails) owes 10.00 + 2.10
= 12.10 a month: October's invoice 2026-000001 is issued on Nov 1, due Nov 15.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, drain, ledger_command, ledger_env, utc

BRIDGE = "urn:test:payment-bridge"


@pytest.fixture
def paid_books(make_services: MakeServices) -> dict[str, str]:
    """2026-000001 paid 5.00 on Nov 20, then 20.00 (7.10 applied, 12.90 held); a failed
    attempt; 3.00 USD held as it is."""
    services = make_services()
    up = Upstreams(services)
    up.publish([up.opened("p", utc(2026, 10, 1), tax_rate="0.21")])
    drain(services)
    services.close_periods(utc(2026, 11, 1, 7))
    up.publish(
        [
            up.payment("p", "5.00", utc(2026, 11, 20), "2026-000001", event_id="pay-1"),
            up.payment_failed("p", "7.10", utc(2026, 11, 25), "2026-000001", "insufficient funds"),
            up.payment("p", "20.00", utc(2026, 11, 28), "2026-000001", event_id="pay-2"),
            up.payment("p", "3.00", utc(2026, 11, 29), currency="USD", event_id="pay-3"),
        ]
    )
    drain(services)
    catch_up(services)
    up.close()
    return ledger_env(services.settings)


def _fits(output: str) -> None:
    assert max(len(line) for line in output.splitlines()) <= 80, output


def test_payments_of_an_account_as_json_and_as_a_table(paid_books: dict[str, str]) -> None:
    result = ledger_command("payments", "p", "--json", env=paid_books)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [
        (p["kind"], p["amount"], p["currency"], p["applied"], p["reason"])
        for p in report["payments"]
    ] == [
        ("succeeded", "5.00", "EUR", "5.00", None),
        ("failed", "7.10", "EUR", None, "insufficient funds"),
        # 12.10 - 5.00 = 7.10 applied, 20.00 - 7.10 = 12.90 held
        ("succeeded", "20.00", "EUR", "7.10", "overpayment"),
        ("succeeded", "3.00", "USD", "0.00", "other_currency"),
    ]
    assert report["payments"][0]["payment_id"] == f"{BRIDGE} pay-1"
    assert [(c["currency"], c["reason"], c["amount"]) for c in report["credit_held"]] == [
        ("EUR", "overpayment", "12.90"),
        ("USD", "other_currency", "3.00"),
    ]

    table = ledger_command("payments", "p", env=paid_books)
    assert table.returncode == 0, table.stderr
    _fits(table.stdout)
    assert "Payments of p (EUR)" in table.stdout
    # A table, not one record per payment: the header row and a row per payment.
    header = next(line for line in table.stdout.splitlines() if line.startswith("#"))
    assert header.split() == ["#", "date", "kind", "amount", "reference", "reason"]
    assert "3.00 USD" in table.stdout  # another currency is named
    assert "insufficient funds" in table.stdout
    assert f"{BRIDGE} pay-2" in table.stdout


def test_receivables_by_age_as_json_and_as_a_table(paid_books: dict[str, str]) -> None:
    # Nov 19: 12.10 open, 4 days past Nov 15; Nov 20: 5.00 paid, 7.10 left; Nov 28: paid.
    def as_of(day: str) -> dict[str, Any]:
        result = ledger_command("receivables", "--as-of", day, "--json", env=paid_books)
        assert result.returncode == 0, result.stderr
        report: dict[str, Any] = json.loads(result.stdout)
        return report

    nov19 = as_of("2026-11-19")
    assert [(a["account_id"], a["days_1_30"], a["total"]) for a in nov19["accounts"]] == [
        ("p", "12.10", "12.10")
    ]
    nov20 = as_of("2026-11-20")
    assert [(t["currency"], t["total"]) for t in nov20["totals"]] == [("EUR", "7.10")]
    assert as_of("2026-11-28") == {"as_of": "2026-11-28", "accounts": [], "totals": []}
    alone = ledger_command(
        "receivables", "--as-of", "2026-11-20", "--account", "p", "--json", env=paid_books
    )
    assert json.loads(alone.stdout)["totals"] == nov20["totals"]

    table = ledger_command("receivables", "--as-of", "2026-11-20", env=paid_books)
    assert table.returncode == 0, table.stderr
    _fits(table.stdout)
    assert "Open at the end of 2026-11-20, by days past due" in table.stdout
    [row] = [line for line in table.stdout.splitlines() if line.startswith("p ")]
    assert row.split() == ["p", "EUR", "0.00", "7.10", "0.00", "0.00", "0.00", "7.10"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["payments", "nobody"], "error: unknown account 'nobody'"),
        (["receivables", "--as-of", "2026-13-01"], "error: not a date: '2026-13-01'"),
        (["receivables", "--account", "nobody"], "error: unknown account 'nobody'"),
    ],
)
def test_payment_reads_refuse_in_one_line(
    paid_books: dict[str, str], args: list[str], message: str
) -> None:
    result = ledger_command(*args, env=paid_books)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(message), result.stderr


@pytest.fixture
def chased_books(make_services: MakeServices) -> dict[str, str]:
    """ "card" (contacts-basic, no contact: PF-card-0001 19.00 at the close of Oct 15
    16:00Z): attempt 1 requested, and declined at 17:00; the retry is due a day later."""
    services = make_services()
    up = Upstreams(services)
    up.publish([up.opened("card", utc(2026, 10, 15, 10), plan="contacts-basic")])
    drain(services)
    services.close_periods(utc(2026, 10, 15, 16))
    services.collect(utc(2026, 10, 15, 16))
    up.publish(
        [
            up.payment_failed(
                "card",
                "19.00",
                utc(2026, 10, 15, 17),
                "PF-card-0001",
                "insufficient funds on the card ending 4242, ask the customer to top it up",
                request_id="PF-card-0001/attempt-1",
            )
        ]
    )
    drain(services)
    catch_up(services)
    up.close()
    return ledger_env(services.settings)


def test_notices_and_dunning_states_as_json_and_as_a_table(chased_books: dict[str, str]) -> None:
    result = ledger_command("notices", "card", "--json", env=chased_books)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [
        (n["notice_id"], n["kind"], n["amount_due"], n["attempt"], n["next_attempt_at"], n["state"])
        for n in report["notices"]
    ] == [
        (
            "PF-card-0001/payment_failed",
            "payment_failed",
            "19.00",
            1,
            "2026-10-16T17:00:00+00:00",
            "open",
        )
    ]
    assert [(d["account_id"], d["state"]) for d in report["dunning"]] == [("card", "past_due")]
    everyone = json.loads(ledger_command("notices", "--open", "--json", env=chased_books).stdout)
    assert [n["account_id"] for n in everyone["notices"]] == ["card"]

    for args in (["notices"], ["notices", "card"]):
        table = ledger_command(*args, env=chased_books)
        assert table.returncode == 0, table.stderr
        _fits(table.stdout)
        assert "PF-card-0001" in table.stdout and "past_due" in table.stdout
        assert "4242" in table.stdout  # the reason wraps, never cut


def test_notices_of_an_unknown_account_is_one_line(chased_books: dict[str, str]) -> None:
    result = ledger_command("notices", "nobody", env=chased_books)
    assert (result.returncode, result.stderr.strip()) == (1, "error: unknown account 'nobody'")
