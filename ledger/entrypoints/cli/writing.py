"""The CLI's writes: a proforma paid, months closed, collections requested. Each
brings the read models up to date before it returns."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from ledger.entrypoints.cli import render
from ledger.entrypoints.cli.app import (
    JsonFlag,
    UserError,
    app,
    bring_read_models_up_to_date,
    err,
    out,
    parse_duration,
    parse_time,
    print_json,
    services,
)
from ledger.entrypoints.cli.escaping import safe


@app.command("mark-paid")
def mark_paid(
    account: str,
    proforma: str,
    at: Annotated[
        str | None, typer.Option("--at", help="Payment time, RFC 3339; now if omitted.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Record that a proforma was paid: issues its final invoice with the next number.

    The operator's path (a payment seen outside the payment bridge): allocated and
    recorded exactly as a payment.succeeded naming the proforma would be.
    """
    with services(write=True) as svc:
        invoice = svc.pay_proforma(account, proforma, parse_time(at) if at else None)
        bring_read_models_up_to_date(svc)
    row = {
        "number": invoice.number,
        "proforma": proforma,
        "account_id": invoice.account_id,
        "period": str(invoice.period),
        "total": str(invoice.total.amount),
        "currency": invoice.currency,
        "issued_on": invoice.issued_on,
    }
    if as_json:
        print_json(row)
    else:
        out.print(f"invoice {safe(invoice.number)} issued for proforma {safe(proforma)}")


@app.command("close-periods")
def close_periods_cmd(
    as_of: Annotated[str, typer.Option("--as-of", help="Close time, RFC 3339.")],
    grace: Annotated[
        str | None, typer.Option(help="Late-event grace, e.g. 6h (default LEDGER_CLOSE_GRACE).")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", is_flag=True, help="Show what would be issued; issue nothing."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Issue receipts/invoices for every month that ended at least GRACE before AS_OF.

    Documents are numbered and irreversible: AS_OF may not be later than the
    clock (plus LEDGER_MAX_FUTURE_SKEW), nor GRACE negative.
    """
    when = parse_time(as_of)
    with services(write=not dry_run) as svc:
        if grace is not None:
            svc.settings.close_grace = parse_duration(grace)
        svc.check_close(when)
        with _progress("closing accounts") as progress:
            documents = svc.close_periods(when, dry_run=dry_run, progress=progress)
        if not dry_run:
            bring_read_models_up_to_date(svc)
    rows = [
        {
            "number": d.number,
            "account_id": d.account_id,
            "kind": d.kind,
            "period": str(d.period),
            "total": str(d.total.amount),
            "currency": d.currency,
        }
        for d in documents
    ]
    if as_json:
        print_json(rows)
    else:
        out.print(f"{len(rows)} document(s) {'would be issued (dry run)' if dry_run else 'issued'}")
        if rows:
            out.print(render.simple_table(rows))


@contextmanager
def _progress(what: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr when it is a terminal (nothing in pipes and logs)."""
    if not err.is_terminal:
        yield lambda _done, _total: None
        return
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(what, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@app.command("collect")
def collect_cmd(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Scan time, RFC 3339; now if omitted.")
    ] = None,
    every_account: Annotated[
        bool,
        typer.Option(
            "--all",
            is_flag=True,
            help="Visit every account, not only those due (once, after upgrading).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Request the collection attempts due and record overdue documents (what serve's
    scheduler does after each close). A request is never made twice.

    AS_OF may not be later than the clock (plus LEDGER_MAX_FUTURE_SKEW).
    """
    with services(write=True) as svc:
        if svc.catalogue.dunning is None:
            raise UserError(
                f"the plan catalogue ({svc.settings.plans_dir}) has no [dunning] policy"
            )
        when = parse_time(as_of) if as_of else svc.clock()
        svc.check_close(when)
        collected = svc.collect(when, every_account=every_account)
        bring_read_models_up_to_date(svc)
    rows = [
        {
            "account_id": account_id,
            "request_id": request.request_id,
            "reference": request.reference,
            "amount": str(request.amount.amount),
            "currency": request.amount.currency,
            "attempt": request.attempt,
        }
        for account_id, request in collected.requests
    ]
    if as_json:
        print_json({"accounts": collected.visited, "events": collected.events, "requests": rows})
    else:
        out.print(
            f"{collected.visited} account(s) visited, {len(rows)} collection request(s),"
            f" {collected.events} event(s) recorded"
        )
        if rows:
            out.print(render.simple_table(rows))
