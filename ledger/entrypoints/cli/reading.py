"""Reading the books: balances, usage, contacts, documents, history and traces.

The reads of the read models and of a history go the short way
(:mod:`ledger.entrypoints.cli.read_side`); contacts and traces, which read the
write side's own tables, open the whole wiring."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.entrypoints.cli import render, render_history
from ledger.entrypoints.cli.app import (
    JsonFlag,
    UserError,
    announce,
    app,
    out,
    parse_time,
    print_json,
    say_behind,
    services,
)
from ledger.entrypoints.cli.escaping import safe
from ledger.entrypoints.cli.loading import loading_modules

if TYPE_CHECKING:
    from ledger.entrypoints.cli.read_side import ReadSide


@contextmanager
def open_books() -> Iterator[ReadSide]:
    # psycopg, eventsourcing and the queries: imported when a read runs, not for --help.
    with loading_modules():
        from ledger.entrypoints.cli.read_side import read_side

    with read_side(announce) as books:
        yield books


def say_if_books_behind(books: ReadSide, *read_models: str) -> None:
    if books.scratch is None:  # the books at a time are replayed whole
        say_behind(books.settings, books.behind(*read_models))


AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Business time (RFC 3339): what was true then, as known now."),
]
KnownAt = Annotated[
    str | None,
    typer.Option("--known-at", help="Recording time (RFC 3339): what the ledger knew then."),
]


@contextmanager
def books_for(account: str, as_of: str | None, known_at: str | None) -> Iterator[ReadSide]:
    """The live read models, or the account's replayed at those times."""
    if as_of is None and known_at is None:
        with open_books() as books:
            yield books
        return
    business = parse_time(as_of) if as_of is not None else None
    recorded = parse_time(known_at) if known_at is not None else None
    from dataclasses import replace

    with open_books() as live, services() as svc:
        if svc.ledger.find_account(account) is None:
            raise UserError(f"unknown account {account!r}")
        from projections.books_at import books_at

        with books_at(
            svc.database_url, svc.replayed_read_models, account, business, recorded
        ) as schema:
            yield replace(live, scratch=schema)


@app.command()
def balance(
    account: str, as_of: AsOf = None, known_at: KnownAt = None, as_json: JsonFlag = False
) -> None:
    """Current balance of an account (negative: owed), and whether sending is blocked;
    --as-of / --known-at: the balance at a past time, replayed from history."""
    with books_for(account, as_of, known_at) as books:
        say_if_books_behind(books, "balances")
        row = books.reports.balance(account)
    print_json(row) if as_json else out.print(render.balance_table([row]))


@app.command()
def balances(as_json: JsonFlag = False) -> None:
    """Balances of all accounts."""
    with open_books() as books:
        say_if_books_behind(books, "balances")
        rows = books.reports.all_balances()
    print_json(rows) if as_json else out.print(render.balance_table(rows))


@app.command()
def usage(
    account: str,
    month: Annotated[str | None, typer.Option(help="YYYY-MM; all months if omitted.")] = None,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    as_json: JsonFlag = False,
) -> None:
    """Monthly usage: emails sent, included, charged, custom SMTP, late, per tier
    (--as-of / --known-at: at a past time, replayed from history).

    For a contacts account: each allowance month (the subscription's monthly
    anniversaries; --month picks the one starting in that month) with its
    allowance, overage and what was billed of it.
    """
    if month is not None:
        from ledger.periods import Month

        month = str(Month.parse(month))
    with books_for(account, as_of, known_at) as books:
        reports = books.reports
        if reports.is_contacts_account(account):
            say_if_books_behind(books, "balances", "contacts")
            rows = reports.allowance_usage(account, month)
            print_json(rows) if as_json else out.print(render.allowance_table(rows))
            return
        say_if_books_behind(books, "balances", "monthly_usage")
        rows = reports.usage(account, month)
    print_json(rows) if as_json else out.print(render.usage_table(rows))


@app.command()
def contacts(
    account: str,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="RFC 3339 time; now if omitted.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Billable contacts of an account at a moment, and what made each billable.

    Rebuilt from the account's stored history (every applied contact change),
    checked against the contact versions the renewals count from.
    """
    from ledger.contacts.account import ContactsAccount, contacts_as_of

    with services() as svc:
        current = svc.ledger.get_account(account)
        if not isinstance(current, ContactsAccount):
            raise UserError(f"account {account!r} is billed by emails, not by contacts")
        at = parse_time(as_of) if as_of else svc.clock()
        listed = contacts_as_of(svc.ledger.history(account), at)
        stored = svc.store.billable_contacts(account, at)
    rows = [
        {
            "contact_id": change.contact_id,
            "billable_because": ", ".join(change.reasons),
            "version": change.version,
            "changed_at": change.changed_at,
            # Set only when reported after a renewal it predates was priced:
            # it counts from just after that renewal.
            "counted_from": change.counted_from,
        }
        for change in listed.values()
    ]
    consistent = stored == {cid: list(c.reasons) for cid, c in listed.items()}
    if as_json:
        print_json(
            {
                "account_id": account,
                "as_of": at,
                "billable_contacts": len(rows),
                "matches_stored_versions": consistent,
                "contacts": rows,
            }
        )
        return
    out.print(
        render.simple_table(rows, title=f"Billable contacts of {safe(account)} at {at.isoformat()}")
    )
    out.print(f"{len(rows):,} billable contact(s)")
    if not consistent:
        raise UserError(INCONSISTENT_CONTACTS.format(account=account))


#: A broken invariant, not a refusal: nothing to retry; what to look at, and to report.
INCONSISTENT_CONTACTS = (
    "the contacts rebuilt from the history of {account!r} differ from the stored contact"
    " versions renewals count from: the ledger is inconsistent; compare ledger history"
    " and ledger trace for the account, and report it"
)


@app.command()
def invoices(
    account: str, as_of: AsOf = None, known_at: KnownAt = None, as_json: JsonFlag = False
) -> None:
    """Receipts, invoices and proformas of an account, with their status (--as-of /
    --known-at: as they stood at a past time, replayed from history)."""
    with books_for(account, as_of, known_at) as books:
        say_if_books_behind(books, "balances", "documents")
        rows = books.reports.documents_of(account)
    print_json(rows) if as_json else out.print(render.documents_table(rows))


@app.command()
def invoice(number: str, as_json: JsonFlag = False) -> None:
    """One receipt, invoice or proforma (by number or proforma id) with its lines."""
    with open_books() as books:
        say_if_books_behind(books, "documents")
        document = books.reports.document(number)
    print_json(document) if as_json else out.print(render.document_panel(document))


@app.command()
def history(account: str, as_json: JsonFlag = False) -> None:
    """Every stored event of an account: business time, recording time, what happened."""
    with open_books() as books:
        events = [render_history.event_summary(e) for e in books.history(account)]
    print_json(events) if as_json else out.print(render_history.history_table(account, events))


@app.command()
def trace(account: str, message_id: str, as_json: JsonFlag = False) -> None:
    """Which ledger event billed an upstream message (email message id, CloudEvent id)
    or recorded a contact (contact id)."""
    from ledger.emails.account import Account

    with services() as svc:
        recorder = svc.store
        rows = recorder.trace_message(account, message_id)
        rows += recorder.trace_contact(account, message_id)
        if not rows:
            raise UserError(f"no message {message_id!r} was applied to account {account!r}")
        for row in rows:
            stored = svc.ledger.get_account(account, version=row["originator_version"])
            if isinstance(stored, Account):
                row["document_number"] = render_history.document_of_version(
                    svc, account, row["originator_version"]
                )
                row["account_version_balance"] = str(stored.balance.rounded().amount)
            else:
                row["billable_contacts_then"] = stored.billable
    print_json(rows) if as_json else out.print(render_history.trace_table(rows))
