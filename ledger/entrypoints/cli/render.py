"""Readable tables for the CLI (rich). Numbers come rounded from the queries.

Upstream text goes through :func:`ledger.entrypoints.cli.escaping.safe` first.
Tables are :class:`ledger.entrypoints.cli.tables.FitTable`: ids, numbers and
amounts are never cut.
"""

from __future__ import annotations

from base64 import b64encode
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ledger.entrypoints.cli.escaping import safe
from ledger.entrypoints.cli.tables import Column, FitTable, cell
from ledger.money import Money

if TYPE_CHECKING:
    from ledger.entrypoints.bootstrap import Services


#: Free-text fields: they may wrap; every other cell is shown in one piece.
FREE_TEXT = frozenset(
    {"details", "description", "reason", "billable_because", "error", "payload", "topics"}
)


def _fmt(value: Any) -> str:
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
    return FitTable(columns, [[_fmt(v) for v in row.values()] for row in rows], title=title)


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
        [[_fmt(row[key]) for _, key in columns] for row in rows],
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
        [[_fmt(row[key]) for _, key in columns] for row in rows],
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
        "settled_by",
    ]
    present = [k for k in keys if not rows or k in rows[0]]
    columns = [
        Column(key.replace("_", " "), "right" if key in {"subtotal", "tax", "total"} else "left")
        for key in present
    ]
    return FitTable(columns, [[_fmt(row[k]) for k in present] for row in rows], title=title)


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


def event_summary(event: Any) -> dict[str, Any]:
    name = type(event).__name__
    summary: dict[str, Any] = {
        "version": event.originator_version,
        "event": name,
        "effective_at": getattr(event, "effective_at", None),
        "recorded_at": event.timestamp,
    }
    details = ""
    if name == "EmailsRecorded":
        parts = []
        for entry in event.entries:
            late = " late" if entry.late else ""
            parts.append(
                f"{entry.month}{late}: {entry.platform} platform, {entry.custom_smtp} custom SMTP"
            )
        details = "; ".join(parts) + f"; charged {event.charged.amount} {event.charged.currency}"
    elif name == "DocumentIssued":
        doc = event.document
        details = f"{doc.kind} {doc.number} for {doc.period}: total {doc.total}"
    elif name in {"CreditPurchased"}:
        details = f"+{event.amount}"
    elif name == "MonthOpened":
        details = f"{event.usage.month} opened, fee {event.fee}"
    elif name in {"Opened", "PlanChanged"} and hasattr(event, "plan"):
        details = f"plan {event.plan.id}"
    elif name == "Opened":
        sub = event.subscription
        details = f"plan {sub.plan.id} {sub.period}, products {', '.join(sub.products) or '-'}"
    elif name == "ContactsChanged":
        details = f"{len(event.changes)} contact change(s), {event.billable:,} billable"
    elif name in {"ProformaIssued", "ProformaReplaced"}:
        doc = event.proforma.document
        details = f"proforma {doc.number} for {doc.period}: total {doc.total}"
    elif name == "ProformaPaid":
        details = f"{event.proforma} paid: invoice {event.invoice.number}"
    elif name == "PlanChangeScheduled":
        details = "cancelled" if event.cancelled else f"plan {event.plan.id} from next renewal"
    elif name in {"SendingBlocked", "SendingUnblocked"}:
        details = f"balance {event.balance}"
    summary["details"] = details
    return summary


def history_table(account: str, events: list[dict[str, Any]]) -> FitTable:
    return FitTable(
        [
            Column("v", "right"),
            Column("event"),
            Column("effective at", wrap=True),
            Column("recorded at", wrap=True),
            Column("details", wrap=True),
        ],
        [
            [
                str(e["version"]),
                safe(e["event"]),
                _fmt(e["effective_at"]),
                e["recorded_at"].isoformat(sep=" ", timespec="seconds"),
                safe(e["details"]),
            ]
            for e in events
        ],
        title=f"History of {safe(account)}",
    )


def document_of_version(svc: Services, account: str, version: int) -> str | None:
    """The document that billed what the event at ``version`` recorded."""
    events: list[Any] = list(svc.ledger.history(account))
    recorded = next((e for e in events if e.originator_version == version), None)
    if recorded is None or type(recorded).__name__ != "EmailsRecorded":
        return None
    late = any(entry.late for entry in recorded.entries)
    months = {entry.month for entry in recorded.entries if not entry.late}
    for later in events:
        if type(later).__name__ != "DocumentIssued" or later.originator_version < version:
            continue
        if later.document.period in months or late:
            number: str = later.document.number
            return number
    return None


def trace_table(rows: list[dict[str, Any]]) -> FitTable:
    return simple_table(rows, title="Trace")


#: Characters of a payload shown in a table (``--json`` gives it whole).
PAYLOAD_SHOWN = 100


def dead_letter_view(row: dict[str, Any]) -> dict[str, Any]:
    """A stored dead letter for people and ``--json``: key and payload as text when
    they are UTF-8 (the payload base64-encoded otherwise, as on the dead-letter topic)."""
    payload = bytes(row["payload"])
    try:
        text, encoding = payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = b64encode(payload).decode(), "base64"
    key = row.get("key")
    return {
        "id": row["id"],
        "recorded_at": row["recorded_at"],
        "topic": row["topic"],
        "partition": row["kafka_partition"],
        "offset": row["kafka_offset"],
        "key": bytes(key).decode("utf-8", "replace") if key is not None else None,
        "reason": row["reason"],
        "payload": text,
        "payload_encoding": encoding,
        "replayed_at": row.get("replayed_at"),
        "parked_id": row.get("parked_id"),
    }


def _shortened(text: str, limit: int = PAYLOAD_SHOWN) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def dead_letter_table(rows: list[dict[str, Any]], title: str = "Dead letters") -> FitTable:
    """Stored dead letters (as ``LedgerRecorder.dead_letters`` returns them), newest
    first; upstream text (key, reason, payload) is escaped, never obeyed."""
    return simple_table(
        [
            {
                "id": row["id"],
                "recorded": row["recorded_at"].isoformat(timespec="seconds"),
                "source": f"{row['topic']}:{row['partition']}@{row['offset']}",
                "key": row["key"] or "",
                "reason": row["reason"],
                "payload": _shortened(row["payload"]),
                "replayed": f"{row['replayed_at'].isoformat(timespec='seconds')}"
                f" (parked {row['parked_id']})"
                if row["replayed_at"]
                else "",
            }
            for row in map(dead_letter_view, rows)
        ],
        title=title,
    )


def parked_table(rows: list[dict[str, Any]]) -> FitTable:
    """Facts waiting for their account, per account (``LedgerRecorder.parked_by_account``)."""
    return simple_table(
        [
            {
                "account": row["account_id"],
                "facts": row["facts"],
                "oldest_event": row["oldest_event_time"].isoformat()
                if row["oldest_event_time"]
                else "",
                "parked_since": row["parked_since"].isoformat(timespec="seconds"),
                "topics": row["topics"],
                "replays_queued": row["replays_queued"],
            }
            for row in rows
        ],
        title="Parked facts",
    )
