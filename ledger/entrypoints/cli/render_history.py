"""The CLI's views of an account's history: its events, and where an email or contact went
(``ledger history``, ``ledger trace``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.entrypoints.cli.escaping import safe
from ledger.entrypoints.cli.render import fmt, simple_table
from ledger.entrypoints.cli.tables import Column, FitTable

if TYPE_CHECKING:
    from ledger.entrypoints.bootstrap import Services


def event_summary(event: Any) -> dict[str, Any]:
    name = type(event).__name__
    summary: dict[str, Any] = {
        "version": event.originator_version,
        "event": name,
        "effective_at": getattr(event, "effective_at", None),
        "recorded_at": event.timestamp,
    }
    details = ""
    if name == "EmailsRecorded" and hasattr(event, "months"):  # a contacts account's
        details = "; ".join(
            f"allowance month from {m.period.start}: {m.platform} platform,"
            f" {m.custom_smtp} custom SMTP"
            for m in event.months
        )
    elif name == "EmailsRecorded":
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
    elif name == "PaymentReceived":
        details = f"{event.amount} for {event.reference or 'no reference'}: {_settled(event)}"
    elif name == "CreditApplied":
        details = f"held credit: {_settled(event)}"
    elif name == "PaymentFailed":
        retry = "" if event.retryable else ", not retryable"
        details = f"{event.amount} for {event.reference or '-'} failed: {event.reason}{retry}"
    elif name == "CollectionRequested":
        details = f"attempt {event.attempt}: {event.amount} for {event.reference} requested"
    elif name == "DunningChanged":
        details = _dunning(event)
    summary["details"] = details
    return summary


def _dunning(event: Any) -> str:
    """The state after, each transition with its reason, each notice change, each
    collection that moved: what the scan or the payment decided."""
    parts = [f"state {event.state}"]
    parts += [f"{t.from_state} -> {t.to_state}: {t.reason}" for t in event.transitions]
    parts += [f"notice {c.notice.notice_id} {c.change}" for c in event.notice_changes]
    for c in event.collections:
        due = f" due {c.due_at.isoformat()}" if c.due_at is not None else ""
        parts.append(f"collection {c.reference} attempt {c.attempt} {c.status}{due}")
    return "; ".join(parts)


def _settled(event: Any) -> str:
    """Where a payment's money went: each document it paid, then what is held."""
    paid = [f"{a.amount} to {a.reference}" for a in event.allocations]
    held = [f"{c.amount} held ({c.reason})" for c in event.credit]
    return ", ".join(paid + held) or "nothing applied"


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
                fmt(e["effective_at"]),
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
