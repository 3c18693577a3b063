"""Readable tables of the books for the CLI (rich): balances, usage, documents, and the
generic table and facts views the other views build on. Numbers come rounded from the queries.

Upstream text goes through :func:`ledger.entrypoints.cli.escaping.safe` first.
Tables are :class:`ledger.entrypoints.cli.tables.FitTable`: ids, numbers and
amounts are never cut.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ledger.entrypoints.cli.escaping import safe
from ledger.entrypoints.cli.tables import Column, FitTable, cell
from ledger.money import Money

#: Free-text fields: they may wrap; every other cell is shown in one piece.
FREE_TEXT = frozenset(
    {"details", "description", "reason", "billable_because", "error", "payload", "topics"}
)


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return safe(value)


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def simple_table(rows: list[dict[str, Any]], title: str | None = None) -> FitTable:
    """``title`` is markup: callers escape what they put in it."""
    if not rows:
        return FitTable([Column("(none)")], [], title=title)
    columns = [
        Column(
            key.replace("_", " "),
            justify="right" if _numeric(value) else "left",
            wrap=key in FREE_TEXT,
        )
        for key, value in rows[0].items()
    ]
    return FitTable(columns, [[fmt(v) for v in row.values()] for row in rows], title=title)


def balance_table(rows: list[dict[str, Any]]) -> FitTable:
    columns = [
        Column("account"),
        Column("mode"),
        Column("plan"),
        Column("balance", justify="right"),
        Column("currency"),
        Column("sending"),
        Column("status"),
    ]
    # What payments left: documents still owed, and credit held (from the read model).
    payments = bool(rows) and "amount_owed" in rows[0]
    if payments:
        columns += [Column("documents owed", justify="right"), Column("credit", justify="right")]
    cells = []
    for row in rows:
        amount = Decimal(row["balance"])
        shown = f"[red]{amount}[/red] (owed)" if amount < 0 else str(amount)
        cells.append(
            [
                safe(row["account_id"]),
                safe(row["payment_mode"]),
                safe(row["plan_id"]),
                shown,
                safe(row["currency"]),
                "[red]blocked[/red]" if row["sending_blocked"] else "allowed",
                safe(row["status"]),
                *([safe(row["amount_owed"]), safe(row["unapplied_credit"])] if payments else []),
            ]
        )
    return FitTable(columns, cells, title="Balances")


def usage_table(rows: list[dict[str, Any]]) -> Group:
    columns = [
        ("account", "account_id"),
        ("month", "month"),
        ("platform", "platform_emails"),
        ("included", "included_emails"),
        ("charged", "charged_emails"),
        ("custom SMTP", "custom_smtp_emails"),
        ("late", "late_emails"),
        ("usage amount", "usage_amount"),
        ("fee", "fee"),
        ("document", "document_number"),
    ]
    left = {"account_id", "month", "document_number"}
    months = FitTable(
        [Column(title, "left" if key in left else "right") for title, key in columns],
        [[fmt(row[key]) for _, key in columns] for row in rows],
        title="Monthly usage",
    )
    tiers = FitTable(
        [
            Column("account"),
            Column("month"),
            Column("plan"),
            Column("tier"),
            Column("unit price", "right"),
            Column("emails", "right"),
            Column("amount", "right"),
        ],
        [
            [
                safe(row["account_id"]),
                safe(row["month"]),
                safe(tier["plan_id"]),
                safe(tier["tier"]),
                safe(tier["unit_price"]),
                f"{tier['emails']:,}",
                str(Money.of(tier["amount"], row["currency"]).rounded().amount),
            ]
            for row in rows
            for tier in row["tiers"]
        ],
        title="Charged emails by tier",
        box=box.SIMPLE,
    )
    return Group(months, tiers)


def allowance_table(rows: list[dict[str, Any]]) -> FitTable:
    columns = [
        ("account", "account_id"),
        ("month", "period_start"),
        ("until", "period_end"),
        ("platform", "platform_emails"),
        ("custom SMTP", "custom_smtp_emails"),
        ("contacts", "contacts"),
        ("allowance", "allowance"),
        ("overage", "overage_emails"),
        ("billed", "billed_overage_emails"),
        ("unit price", "overage_unit_price"),
    ]
    left = {"account_id", "period_start", "period_end"}
    return FitTable(
        [Column(title, "left" if key in left else "right") for title, key in columns],
        [[fmt(row[key]) for _, key in columns] for row in rows],
        title="Allowance months",
    )


def documents_table(
    rows: list[dict[str, Any]], title: str = "Receipts, invoices and proformas"
) -> FitTable:
    keys = [
        "number",
        "account_id",
        "kind",
        "period",
        "issued_on",
        "due_on",
        "subtotal",
        "tax",
        "total",
        "currency",
        "status",
        "paid",
        "amount_due",
        "settled_by",
    ]
    present = [k for k in keys if not rows or k in rows[0]]
    amounts = {"subtotal", "tax", "total", "paid", "amount_due"}
    columns = [
        Column(
            "due" if key == "amount_due" else key.replace("_", " "),
            "right" if key in amounts else "left",
        )
        for key in present
    ]
    return FitTable(columns, [[fmt(row[k]) for k in present] for row in rows], title=title)


def document_panel(document: dict[str, Any]) -> Panel:
    """The heading facts are lines of their own, never a panel title (rich cuts those)."""
    rate = Decimal(document["tax_rate"]) * 100
    currency = safe(document["currency"])
    total = safe(document["total"])
    lines = FitTable(
        [
            Column("#", "right"),
            Column("description", wrap=True),
            Column("qty", "right"),
            Column("unit price", "right"),
            Column("amount", "right"),
        ],
        [
            [
                str(line["line_no"]),
                safe(line["description"]),
                f"{line['quantity']:,}",
                "" if line["unit_price"] is None else safe(line["unit_price"]),
                safe(line["amount"]),
            ]
            for line in document["lines"]
        ],
        footer=[
            ["", "Subtotal", "", "", safe(document["subtotal"])],
            ["", f"Tax {rate.normalize()}%", "", "", safe(document["tax"])],
            ["", f"[bold]Total {currency}[/bold]", "", "", f"[bold]{total}[/bold]"],
        ],
        box=box.SIMPLE,
        show_edge=False,
    )
    if document["due_on"]:
        due = f"due {safe(document['due_on'])}"
    elif document.get("proforma"):
        due = f"paid, proforma {safe(document['proforma'])}"
    else:
        due = "settled from prepaid balance"
    contacts = document.get("billable_contacts")
    settled = f" by {safe(document['settled_by'])}" if document.get("settled_by") else ""
    heading = facts(
        [
            ("account", safe(document["account_id"])),
            ("period", safe(document["period"])),
            *([("billable contacts", f"{contacts:,}")] if contacts is not None else []),
            ("issued", f"{safe(document['issued_on'])}, {due}"),
            ("status", f"{safe(document['status'])}{settled}"),
            *(
                [("paid", f"{safe(document['paid'])}, due {safe(document['amount_due'])}")]
                if "paid" in document
                else []
            ),
        ],
        title=f"{safe(document['kind'].capitalize())} {safe(document['number'])}",
    )
    return Panel(Group(heading, Text(""), lines))


def facts(pairs: list[tuple[str, str]], title: str | None = None) -> Group:
    """Labelled values, one per line; a value wider than the terminal folds, never cut.
    Values and title are markup: callers escape upstream text."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in pairs:
        grid.add_row(label, cell(value))
    heading = [cell(f"[bold]{title}[/bold]")] if title else []
    return Group(*heading, grid)
