"""Reading money in: an account's payments, what is owed by age, and the notices.

Reads of the read models, the short way (:mod:`ledger.entrypoints.cli.read_side`):
no eventsourcing, Kafka or command side is imported (tests/e2e/test_cli_imports.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer

from ledger.entrypoints.cli import render_payments
from ledger.entrypoints.cli.app import JsonFlag, UserError, app, out, print_json
from ledger.entrypoints.cli.reading import (
    AsOf,
    KnownAt,
    books_for,
    open_books,
    say_if_books_behind,
)


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"not a date: {text!r} (use YYYY-MM-DD, e.g. 2026-12-31)") from None


@app.command()
def payments(account: str, as_json: JsonFlag = False) -> None:
    """Payments of an account: each payment and failed attempt, the documents its money
    paid (at once, or later from the credit it left), and the credit held, with why."""
    with open_books() as books:
        say_if_books_behind(books, "balances", "payments")
        report = books.payment_reports.payments_of(account)
    print_json(report) if as_json else out.print(render_payments.payments_view(report))


@app.command()
def receivables(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="YYYY-MM-DD: what was open at the end of that day (documents issued by"
            " then, less what was paid by then); today (UTC) if omitted.",
        ),
    ] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Only this account's documents.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Open amounts by account and age (days past the due date: current, 1-30, 31-60,
    61-90, 90+), with totals per currency."""
    day = parse_date(as_of) if as_of is not None else datetime.now(UTC).date()
    with open_books() as books:
        say_if_books_behind(books, "balances", "documents", "payments")
        report = books.payment_reports.receivables(day, account)
    print_json(report) if as_json else out.print(render_payments.receivables_view(report))


@app.command()
def notices(
    account: Annotated[str | None, typer.Argument(help="One account; all if omitted.")] = None,
    open_only: Annotated[
        bool, typer.Option("--open", is_flag=True, help="Only notices not resolved yet.")
    ] = False,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    as_json: JsonFlag = False,
) -> None:
    """Payment-failure, overdue and suspension notices (what the customer panel shows),
    and each account's dunning state: current, past_due or suspended (--as-of /
    --known-at, for one account: as they stood at a past time, replayed from history)."""
    if account is None and (as_of or known_at):
        raise UserError("--as-of and --known-at read one account's history: name the account")
    with books_for(account or "", as_of, known_at) as books:
        say_if_books_behind(books, "balances", "notices")
        report = books.payment_reports.notices(account, open_only)
    print_json(report) if as_json else out.print(render_payments.notices_view(report, account))
