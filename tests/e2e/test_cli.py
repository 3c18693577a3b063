"""The ``ledger`` command as a user runs it: readable output, JSON, one-line errors."""

from __future__ import annotations

import json

import pytest

from tests.conftest import MakeServices
from tests.support import Upstreams, ledger_command, ledger_env, utc


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["balance", "nobody"], "error: unknown account 'nobody'"),
        (["invoice", "2026-999999"], "error: no invoice or receipt numbered '2026-999999'"),
        (["close-periods", "--as-of", "yesterday"], "error: not a time: 'yesterday'"),
        (
            ["close-periods", "--as-of", "2026-12-01T00:00:00"],
            "error: time '2026-12-01T00:00:00' has no UTC offset",
        ),
        (["usage", "acme", "--month", "2026-13"], "error: month out of range: 13"),
    ],
)
def test_user_errors_are_one_line_with_a_non_zero_exit(
    books_once: dict[str, str], args: list[str], message: str
) -> None:
    result = ledger_command(*args, env=books_once)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), result.stderr


def test_reports_read_the_books_as_json(books_once: dict[str, str]) -> None:
    # October: fee 10.00; 1,500 emails, 1,000 included, 500 at 0.0010 = 0.50; subtotal 10.50;
    # tax 21% = 2.205 -> 2.21 (half-up); total 12.71. Balance: 25.00 - 10.00 - 0.50 - 2.21
    # (close adjustment 12.71 - 10.50) - 10.00 (November fee) = 2.29.
    balance = json.loads(ledger_command("balance", "acme", "--json", env=books_once).stdout)
    assert (balance["balance"], balance["sending_blocked"]) == ("2.29", False)
    documents = json.loads(ledger_command("invoices", "acme", "--json", env=books_once).stdout)
    assert [(d["number"], d["period"], d["total"]) for d in documents] == [
        ("2026-000001", "2026-10", "12.71")
    ]
    receipt = json.loads(ledger_command("invoice", "2026-000001", "--json", env=books_once).stdout)
    assert [line["amount"] for line in receipt["lines"]] == ["10.00", "0.00", "0.50"]
    assert receipt["tax"] == "2.21"
    usage = json.loads(
        ledger_command("usage", "acme", "--month", "2026-10", "--json", env=books_once).stdout
    )
    assert (usage[0]["platform_emails"], usage[0]["charged_emails"]) == (1500, 500)


def test_tables_for_people_and_a_rebuild(books: dict[str, str]) -> None:
    table = ledger_command("invoice", "2026-000001", env=books)
    assert table.returncode == 0
    assert "Receipt 2026-000001" in table.stdout and "12.71" in table.stdout
    before = ledger_command("balances", "--json", env=books).stdout
    rebuilt = ledger_command("projections", "rebuild", env=books)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt 6 projections" in rebuilt.stdout
    assert ledger_command("balances", "--json", env=books).stdout == before
    history = ledger_command("history", "acme", env=books)
    assert "DocumentIssued" in history.stdout


def test_published_schemas_are_current(books_once: dict[str, str]) -> None:
    result = ledger_command("schemas", "--check", env=books_once)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def contact_books(make_services: MakeServices) -> dict[str, str]:
    """A contacts account: 3 contacts (one with nothing billable), one deleted later."""
    services = make_services()
    up = Upstreams(services)
    up.publish(
        [
            up.opened("shop", utc(2026, 3, 10, 9), plan="contacts-basic", products=["chat"]),
            up.contact("shop", "ann", 1, utc(2026, 3, 9), email="ann@x", phone="+1"),
            up.contact("shop", "bob", 1, utc(2026, 3, 9), chat_replied=True),
            up.contact("shop", "cid", 1, utc(2026, 3, 9)),
            up.contact_deleted("shop", "bob", 2, utc(2026, 3, 20)),
        ]
    )
    consumer = services.consumer()
    consumer.drain(timeout=60)
    consumer.close()
    up.close()
    return ledger_env(services.settings)


def test_contacts_proformas_and_payment_from_the_cli(contact_books: dict[str, str]) -> None:
    env = contact_books
    listed = json.loads(
        ledger_command(
            "contacts", "shop", "--as-of", "2026-03-15T00:00:00Z", "--json", env=env
        ).stdout
    )
    assert (listed["billable_contacts"], listed["matches_stored_versions"]) == (2, True)
    assert [(c["contact_id"], c["billable_because"]) for c in listed["contacts"]] == [
        ("ann", "email, phone"),
        ("bob", "chat_replied"),
    ]
    later = json.loads(
        ledger_command(
            "contacts", "shop", "--as-of", "2026-03-21T00:00:00Z", "--json", env=env
        ).stdout
    )
    assert later["billable_contacts"] == 1  # bob was deleted on Mar 20

    closed = ledger_command("close-periods", "--as-of", "2026-03-10T15:00:00Z", "--json", env=env)
    assert closed.returncode == 0, closed.stderr
    # Counted at the opening: ann and bob, 2 contacts (tier 1, 19.00) + chat 10.00 = 29.00.
    assert [(d["number"], d["kind"], d["total"]) for d in json.loads(closed.stdout)] == [
        ("PF-shop-0001", "proforma", "29.00")
    ]
    paid = ledger_command(
        "mark-paid", "shop", "PF-shop-0001", "--at", "2026-03-11T08:00:00Z", "--json", env=env
    )
    assert paid.returncode == 0, paid.stderr
    assert json.loads(paid.stdout)["number"] == "2026-000001"
    catch_up_env = ledger_command("projections", "rebuild", env=env)
    assert catch_up_env.returncode == 0, catch_up_env.stderr
    invoice = json.loads(ledger_command("invoice", "2026-000001", "--json", env=env).stdout)
    assert (invoice["kind"], invoice["proforma"], invoice["status"], invoice["total"]) == (
        "invoice",
        "PF-shop-0001",
        "paid",
        "29.00",
    )
    listing = json.loads(ledger_command("invoices", "shop", "--json", env=env).stdout)
    assert [(d["number"], d["status"]) for d in listing] == [
        ("PF-shop-0001", "paid"),
        ("2026-000001", "paid"),
    ]

    again = ledger_command("mark-paid", "shop", "PF-shop-0001", env=env)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1] == (
        "error: account 'shop' has no unpaid proforma 'PF-shop-0001'"
    )
    table = ledger_command("contacts", "shop", "--as-of", "2026-03-15T00:00:00Z", env=env)
    assert "2 billable contact(s)" in table.stdout and "email, phone" in table.stdout
    traced = json.loads(ledger_command("trace", "shop", "bob", "--json", env=env).stdout)
    # bob: created billable (v1, chat), deleted (v2); each version names its ledger event.
    assert [(r["version"], r["reasons"], r["deleted"]) for r in traced] == [
        (1, ["chat_replied"], False),
        (2, [], True),
    ]
    assert all(r["originator_version"] >= 2 for r in traced)
