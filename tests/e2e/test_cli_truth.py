"""The CLI tells the truth and cannot be abused (issue points 5 and 6), as a user runs it."""

from __future__ import annotations

import json
import os

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from commands.handlers import BatchWork, apply_commands, save_batch
from commands.models import OpenAccount
from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.support import (
    Upstreams,
    catch_up,
    ledger_command,
    ledger_env,
    utc,
)

LONG_ID = "northwind-trading-company-emea-000000042"  # 40 characters


def _open(services: Services, *accounts: str, plan: str = "email-starter") -> None:
    """Postpaid accounts opened on 2026-10-01: each is two events (Opened, MonthOpened)."""
    work = BatchWork(services.ledger, services.catalogue)
    apply_commands(
        [
            OpenAccount(
                account_id=account,
                plan=plan,
                payment_mode="postpaid",
                currency="EUR",
                at=utc(2026, 10, 1),
            )
            for account in accounts
        ],
        work,
    )
    save_batch(work, None)


def _errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("note:")]


def test_a_document_issued_by_close_periods_is_readable_at_once(
    make_services: MakeServices,
) -> None:
    services = make_services()
    _open(services, "acme")
    env = ledger_env(services.settings)
    closed = ledger_command("close-periods", "--as-of", "2026-11-01T07:00:00Z", "--json", env=env)
    assert closed.returncode == 0, closed.stderr
    # October of a postpaid email-starter account without emails: the fee, 10.00, no tax.
    assert [(d["number"], d["kind"], d["total"]) for d in json.loads(closed.stdout)] == [
        ("2026-000001", "invoice", "10.00")
    ]
    shown = ledger_command("invoice", "2026-000001", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert (json.loads(shown.stdout)["total"], _notes(shown.stderr)) == ("10.00", [])
    listed = ledger_command("invoices", "acme", "--json", env=env)
    assert [d["number"] for d in json.loads(listed.stdout)] == ["2026-000001"]
    assert _notes(listed.stderr) == []


def test_a_read_says_how_many_events_its_read_model_is_behind(
    make_services: MakeServices,
) -> None:
    services = make_services()
    _open(services, "acme", "globex", "initech")  # 3 x (Opened, MonthOpened) = 6 events
    env = ledger_env(services.settings)
    stale = ledger_command("balances", "--json", env=env)
    assert stale.returncode == 0, stale.stderr
    assert json.loads(stale.stdout) == []
    assert _notes(stale.stderr) == [
        "note: balances are 6 event(s) behind the ledger;"
        " run ledger serve, or ledger projections catch-up"
    ]
    caught = ledger_command("projections", "catch-up", env=env)
    assert caught.returncode == 0, caught.stderr
    assert caught.stdout.split(", ")[0] == "balances: 6 event(s) applied"
    fresh = ledger_command("balances", "--json", env=env)
    assert [r["account_id"] for r in json.loads(fresh.stdout)] == ["acme", "globex", "initech"]
    assert _notes(fresh.stderr) == []


def test_close_periods_refuses_a_future_close_and_a_negative_grace(
    make_services: MakeServices,
) -> None:
    services = make_services()
    _open(services, "acme")
    catch_up(services)
    env = ledger_env(services.settings)
    future = ledger_command("close-periods", "--as-of", "2099-01-01T00:00:00Z", env=env)
    assert future.returncode == 1
    [error] = _errors(future.stderr)
    assert error.startswith(
        "error: cannot close periods as of 2099-01-01T00:00:00+00:00: that is later than"
        " the clock allows ("
    )
    negative = ledger_command(
        "close-periods", "--as-of", "2026-11-01T07:00:00Z", "--grace", "-6h", env=env
    )
    assert negative.returncode == 1
    assert _errors(negative.stderr) == ["error: the close grace must not be negative: -6:00:00"]
    listed = ledger_command("invoices", "acme", "--json", env=env)
    assert json.loads(listed.stdout) == []  # nothing was issued


def test_a_dry_run_shows_the_documents_and_issues_none(make_services: MakeServices) -> None:
    services = make_services()
    _open(services, "acme", "globex")
    catch_up(services)
    env = ledger_env(services.settings)
    args = ["close-periods", "--as-of", "2026-11-01T07:00:00Z"]
    preview = ledger_command(*args, "--dry-run", "--json", env=env)
    assert preview.returncode == 0, preview.stderr
    expected = [("2026-000001", "acme", "10.00"), ("2026-000002", "globex", "10.00")]
    assert [(d["number"], d["account_id"], d["total"]) for d in json.loads(preview.stdout)] == (
        expected
    )
    table = ledger_command(*args, "--dry-run", env=env)
    assert table.stdout.splitlines()[0] == "2 document(s) would be issued (dry run)"
    assert json.loads(ledger_command("invoices", "acme", "--json", env=env).stdout) == []
    issued = ledger_command(*args, "--json", env=env)
    assert [(d["number"], d["account_id"], d["total"]) for d in json.loads(issued.stdout)] == (
        expected
    )


def test_markup_in_account_ids_is_printed_as_text_by_every_command(
    make_services: MakeServices,
) -> None:
    services = make_services()
    _open(services, "evil[/]", "[bold red]acme[/bold red]", ":warning:")
    _open(services, "shop[/]", plan="contacts-basic")
    catch_up(services)
    env = ledger_env(services.settings)
    balances = ledger_command("balances", env={**env, "COLUMNS": "120"})
    assert balances.returncode == 0, balances.stderr
    for account in ["evil[/]", "[bold red]acme[/bold red]", ":warning:", "shop[/]"]:
        assert account in balances.stdout
    for args in (["balance", "evil[/]"], ["history", "evil[/]"]):
        result = ledger_command(*args, env=env)
        assert result.returncode == 0, result.stderr
        assert "evil[/]" in result.stdout, args
    contacts = ledger_command("contacts", "shop[/]", "--as-of", "2026-10-02T00:00:00Z", env=env)
    assert contacts.returncode == 0, contacts.stderr
    assert "Billable contacts of shop[/]" in contacts.stdout
    unknown = ledger_command("balance", "nobody[/]", env=env)
    assert _errors(unknown.stderr) == ["error: unknown account 'nobody[/]'"]


def test_invoices_at_80_columns_show_numbers_ids_and_amounts_in_full(
    make_services: MakeServices,
) -> None:
    services = make_services()
    _open(services, LONG_ID)
    env = {**ledger_env(services.settings), "COLUMNS": "80"}
    closed = ledger_command("close-periods", "--as-of", "2026-11-01T07:00:00Z", env=env)
    assert closed.returncode == 0, closed.stderr
    listed = ledger_command("invoices", LONG_ID, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "2026-000001" in listed.stdout and "10.00" in listed.stdout
    assert "…" not in listed.stdout
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80
    document = ledger_command("invoice", "2026-000001", env=env)
    assert "Invoice 2026-000001" in document.stdout and LONG_ID in document.stdout
    assert "…" not in document.stdout


def test_bad_options_and_a_read_only_database_are_one_line_each(
    make_services: MakeServices,
) -> None:
    services = make_services()
    _open(services, "acme")
    env = ledger_env(services.settings)
    negative = ledger_command("dead-letters", "--limit", "-1", env=env)
    assert negative.returncode == 2
    [error] = _errors(negative.stderr)
    assert error.startswith("error: Invalid value for '--limit'")
    assert negative.stderr.strip() == error
    read_only = make_conninfo(services.database_url, options="-c default_transaction_read_only=on")
    refused = ledger_command(
        "close-periods",
        "--as-of",
        "2026-11-01T07:00:00Z",
        env={**env, "LEDGER_DATABASE_URL": read_only},
    )
    assert refused.returncode == 1
    assert _errors(refused.stderr) == [
        "error: the database is read-only (a standby, or default_transaction_read_only is on)"
    ]


def test_help_shows_flags_as_flags_and_no_raw_markup() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    top = ledger_command("--help", env=env)
    assert top.returncode == 0 and "``" not in top.stdout and "<bool>" not in top.stdout
    balances = ledger_command("balances", "--help", env=env)
    assert "  --json  Machine-readable output." in balances.stdout.splitlines()


@pytest.fixture
def contact_books(make_services: MakeServices) -> Services:
    services = make_services()
    up = Upstreams(services)
    up.publish(
        [
            up.opened("shop", utc(2026, 3, 10, 9), plan="contacts-basic"),
            up.contact("shop", "ann", 1, utc(2026, 3, 9), email="ann@x"),
            up.contact("shop", "bob", 1, utc(2026, 3, 9), chat_replied=True),
        ]
    )
    consumer = services.consumer()
    consumer.drain(timeout=60)
    consumer.close()
    up.close()
    return services


def test_contacts_that_disagree_with_history_name_commands_that_exist(
    contact_books: Services,
) -> None:
    env = ledger_env(contact_books.settings)
    args = ["contacts", "shop", "--as-of", "2026-03-15T00:00:00Z"]
    assert ledger_command(*args, env=env).returncode == 0
    schema = contact_books.settings.database_schema
    with psycopg.connect(contact_books.database_url, autocommit=True) as conn:
        conn.execute(
            f'DELETE FROM "{schema}".ledger_contact_versions WHERE contact_id = %s', ("bob",)
        )
    broken = ledger_command(*args, env=env)
    assert broken.returncode == 1
    [error] = _errors(broken.stderr)
    assert "ledger verify" not in error
    assert error == (
        "error: the contacts rebuilt from the history of 'shop' differ from the stored contact"
        " versions renewals count from: the ledger is inconsistent; compare ledger history"
        " and ledger trace for the account, and report it"
    )
