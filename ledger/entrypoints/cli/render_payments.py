"""Readable views of money in for the CLI: payments, receivables by age, notices.

Amounts come rounded from the queries (projections/payment_queries.py); upstream
text (ids, references, reasons) goes through
:func:`ledger.entrypoints.cli.escaping.safe`. Every table is a
:class:`ledger.entrypoints.cli.tables.FitTable`, laid out to fit 80 columns:
long ids get a table of their own instead of widening every row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group
from rich.text import Text

from ledger.entrypoints.cli.escaping import safe
from ledger.entrypoints.cli.render import fmt
from ledger.entrypoints.cli.tables import Column, FitTable


def _day(at: datetime) -> str:
    return at.date().isoformat()


def _amount(amount: str, currency: str, account_currency: str) -> str:
    """An amount in the account's currency bare; in another one, named."""
    shown = safe(amount)
    return shown if currency == account_currency else f"{shown} {safe(currency)}"


def payments_view(report: dict[str, Any]) -> Group:
    """What each payment applied is in the allocations below (``--json``: ``applied``),
    so that the payments fit 80 columns beside a reason."""
    currency = report["currency"]
    payments = report["payments"]
    number = {p["payment_id"]: str(i) for i, p in enumerate(payments, start=1)}
    listed = FitTable(
        [
            Column("#", "right"),
            Column("date"),
            Column("kind"),
            Column("amount", "right"),
            Column("reference"),
            Column("reason", wrap=True),
        ],
        [
            [
                number[p["payment_id"]],
                _day(p["at"]),
                safe(p["kind"]),
                _amount(p["amount"], p["currency"], currency),
                fmt(p["reference"]),
                fmt(p["reason"]) + ("" if p["retryable"] is not False else " (not retried)"),
            ]
            for p in payments
        ],
        title=f"Payments of {safe(report['account_id'])} ({safe(currency)})",
    )
    allocations = FitTable(
        [
            Column("#", "right"),
            Column("document"),
            Column("amount", "right"),
            Column("date"),
            Column("from credit held as"),
        ],
        [
            [
                number[p["payment_id"]],
                safe(a["reference"]),
                _amount(a["amount"], a["currency"], currency),
                _day(a["at"]),
                fmt(a["from_credit"]),
            ]
            for p in payments
            for a in p["allocations"]
        ],
        title="Where the money went",
    )
    held = FitTable(
        [
            Column("currency"),
            Column("reason"),
            Column("amount", "right"),
            Column("pieces", "right"),
        ],
        [
            [safe(c["currency"]), safe(c["reason"]), safe(c["amount"]), fmt(c["pieces"])]
            for c in report["credit_held"]
        ],
        title="Credit held",
    )
    ids = FitTable(
        [Column("#", "right"), Column("payment id"), Column("request id")],
        [[number[p["payment_id"]], safe(p["payment_id"]), fmt(p["request_id"])] for p in payments],
        title="Payment ids",
    )
    return Group(listed, Text(""), allocations, Text(""), held, Text(""), ids)


def receivables_view(report: dict[str, Any]) -> FitTable:
    # Here, not at import: ``ledger --help`` imports no projections module.
    from projections.payment_queries import BUCKETS

    keys = [key for key, _, _ in BUCKETS]
    columns = [
        Column("account"),
        Column("cur"),
        *(Column(heading, "right") for _, heading, _ in BUCKETS),
        Column("total", "right"),
    ]
    return FitTable(
        columns,
        [
            [safe(a["account_id"]), safe(a["currency"]), *(a[k] for k in [*keys, "total"])]
            for a in report["accounts"]
        ],
        footer=[
            ["[bold]total[/bold]", safe(t["currency"]), *(t[k] for k in [*keys, "total"])]
            for t in report["totals"]
        ],
        title=f"Open at the end of {report['as_of'].isoformat()}, by days past due",
    )


def _minute(at: datetime | None) -> str:
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M")


def notices_view(report: dict[str, Any], account_id: str | None) -> Group:
    """``account_id``: one account's notices (its id in the title, not in every row)."""
    by_account = account_id is None
    columns = [
        *([Column("account")] if by_account else []),
        Column("kind"),
        Column("document"),
        Column("due", "right"),
        Column("#", "right"),
        Column("next attempt"),
        Column("opened"),
        Column("resolved"),
        Column("reason", wrap=True),
    ]
    rows = [
        [
            *([safe(n["account_id"])] if by_account else []),
            safe(n["kind"]),
            safe(n["reference"]),
            safe(n["amount_due"]),
            fmt(n["attempt"]),
            _minute(n["next_attempt_at"]),
            _day(n["opened_at"]),
            "open" if n["resolved_at"] is None else _day(n["resolved_at"]),
            safe(n["reason"]),
        ]
        for n in report["notices"]
    ]
    title = "Notices" if by_account else f"Notices of {safe(account_id)}"
    states = FitTable(
        [Column("account"), Column("dunning state"), Column("since"), Column("why", wrap=True)],
        [
            [safe(d["account_id"]), safe(d["state"]), _minute(d["since"]), fmt(d["reason"])]
            for d in report["dunning"]
        ],
        title="Dunning states",
    )
    return Group(FitTable(columns, rows, title=title), Text(""), states)
