"""Readable tables for the CLI (rich). Numbers come rounded from the queries."""

from __future__ import annotations

from base64 import b64encode
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ledger.money import Money

if TYPE_CHECKING:
    from ledger.bootstrap import Services


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def simple_table(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left")
    if not rows:
        table.add_column("(none)")
        return table
    for key in rows[0]:
        numeric = isinstance(rows[0][key], (int, Decimal)) and not isinstance(rows[0][key], bool)
        table.add_column(key.replace("_", " "), justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*(_fmt(v) for v in row.values()))
    return table


def balance_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Balances", box=box.SIMPLE_HEAVY, title_justify="left")
    for name, justify in [
        ("account", "left"),
        ("mode", "left"),
        ("plan", "left"),
        ("balance", "right"),
        ("currency", "left"),
        ("sending", "left"),
        ("status", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        amount = Decimal(row["balance"])
        shown = f"[red]{amount}[/red] (owed)" if amount < 0 else str(amount)
        table.add_row(
            row["account_id"],
            row["payment_mode"],
            row["plan_id"],
            shown,
            row["currency"],
            "[red]blocked[/red]" if row["sending_blocked"] else "allowed",
            row["status"],
        )
    return table


def usage_table(rows: list[dict[str, Any]]) -> Group:
    table = Table(title="Monthly usage", box=box.SIMPLE_HEAVY, title_justify="left")
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
    for title, key in columns:
        table.add_column(
            title, justify="left" if key in {"account_id", "month", "document_number"} else "right"
        )
    tiers = Table(title="Charged emails by tier", box=box.SIMPLE, title_justify="left")
    for title in ["account", "month", "plan", "tier", "unit price", "emails", "amount"]:
        tiers.add_column(
            title, justify="right" if title in {"emails", "amount", "unit price"} else "left"
        )
    for row in rows:
        table.add_row(*(_fmt(row[key]) for _, key in columns))
        for tier in row["tiers"]:
            tiers.add_row(
                row["account_id"],
                row["month"],
                tier["plan_id"],
                str(tier["tier"]),
                str(tier["unit_price"]),
                f"{tier['emails']:,}",
                str(Money.of(tier["amount"], row["currency"]).rounded().amount),
            )
    return Group(table, tiers)


def allowance_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Allowance months", box=box.SIMPLE_HEAVY, title_justify="left")
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
    for title, key in columns:
        table.add_column(
            title,
            justify="left" if key in {"account_id", "period_start", "period_end"} else "right",
        )
    for row in rows:
        table.add_row(*(_fmt(row[key]) for _, key in columns))
    return table


def documents_table(
    rows: list[dict[str, Any]], title: str = "Receipts, invoices and proformas"
) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left")
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
    for key in present:
        table.add_column(
            key.replace("_", " "),
            justify="right" if key in {"subtotal", "tax", "total"} else "left",
        )
    for row in rows:
        table.add_row(*(_fmt(row[k]) for k in present))
    return table


def document_panel(document: dict[str, Any]) -> Panel:
    lines = Table(box=box.SIMPLE, show_edge=False)
    lines.add_column("#", justify="right")
    lines.add_column("description")
    lines.add_column("qty", justify="right")
    lines.add_column("unit price", justify="right")
    lines.add_column("amount", justify="right")
    for line in document["lines"]:
        lines.add_row(
            str(line["line_no"]),
            line["description"],
            f"{line['quantity']:,}",
            "" if line["unit_price"] is None else str(line["unit_price"]),
            str(line["amount"]),
        )
    currency = document["currency"]
    rate = Decimal(document["tax_rate"]) * 100
    lines.add_section()
    lines.add_row("", "Subtotal", "", "", str(document["subtotal"]))
    lines.add_row("", f"Tax {rate.normalize()}%", "", "", str(document["tax"]))
    lines.add_row("", f"[bold]Total {currency}[/bold]", "", "", f"[bold]{document['total']}[/bold]")
    if document["due_on"]:
        due = f"due {document['due_on']}"
    elif document.get("proforma"):
        due = f"paid, proforma {document['proforma']}"
    else:
        due = "settled from prepaid balance"
    contacts = document.get("billable_contacts")
    counted = "" if contacts is None else f" - {contacts:,} billable contacts"
    settled = f" by {document['settled_by']}" if document.get("settled_by") else ""
    title = (
        f"{document['kind'].capitalize()} {document['number']} - {document['account_id']} - "
        f"period {document['period']}{counted} - issued {document['issued_on']} - {due}"
        f" - {document['status']}{settled}"
    )
    return Panel(lines, title=title, title_align="left")


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


def history_table(account: str, events: list[dict[str, Any]]) -> Table:
    table = Table(title=f"History of {account}", box=box.SIMPLE_HEAVY, title_justify="left")
    for title in ["v", "event", "effective at", "recorded at", "details"]:
        table.add_column(title)
    for e in events:
        table.add_row(
            str(e["version"]),
            e["event"],
            _fmt(e["effective_at"]),
            e["recorded_at"].isoformat(timespec="seconds"),
            e["details"],
        )
    return table


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


def trace_table(rows: list[dict[str, Any]]) -> Table:
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


def dead_letter_table(rows: list[dict[str, Any]], title: str = "Dead letters") -> Table:
    """Stored dead letters (as ``LedgerRecorder.dead_letters`` returns them), newest first.

    Upstream text (key, reason, payload) goes in as ``Text``, never as markup:
    a payload's ``["chat"]`` must show as written.
    """
    table = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left")
    for name, justify in [
        ("id", "right"),
        ("recorded", "left"),
        ("source", "left"),
        ("key", "left"),
        ("reason", "left"),
        ("payload", "left"),
        ("replayed", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in map(dead_letter_view, rows):
        replayed = row["replayed_at"]
        table.add_row(
            str(row["id"]),
            row["recorded_at"].isoformat(timespec="seconds"),
            Text(f"{row['topic']}:{row['partition']}@{row['offset']}"),
            Text(row["key"] or ""),
            Text(row["reason"]),
            Text(_shortened(row["payload"])),
            f"{replayed.isoformat(timespec='seconds')} (parked {row['parked_id']})"
            if replayed
            else "",
        )
    return table


def parked_table(rows: list[dict[str, Any]]) -> Table:
    """Facts waiting for their account, per account (``LedgerRecorder.parked_by_account``)."""
    table = Table(title="Parked facts", box=box.SIMPLE_HEAVY, title_justify="left")
    for name, justify in [
        ("account", "left"),
        ("facts", "right"),
        ("oldest event", "left"),
        ("parked since", "left"),
        ("topics", "left"),
        ("replays queued", "right"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        oldest = row["oldest_event_time"]
        table.add_row(
            Text(row["account_id"]),
            f"{row['facts']:,}",
            oldest.isoformat() if oldest else "",
            row["parked_since"].isoformat(timespec="seconds"),
            Text(row["topics"]),
            f"{row['replays_queued']:,}",
        )
    return table
