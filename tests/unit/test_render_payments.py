"""What ``ledger payments``, ``receivables`` and ``notices`` print: upstream text as
text, and nothing cut at 80 columns (the reports as the queries return them)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from ledger.entrypoints.cli import render_payments
from tests.unit.test_render import LONG_ID, shown

AT = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)


def payment(payment_id: str, reference: str, reason: str | None, **fields: Any) -> dict[str, Any]:
    row = {
        "payment_id": payment_id,
        "kind": "succeeded",
        "at": AT,
        "amount": "20.00",
        "currency": "EUR",
        "reference": reference,
        "request_id": None,
        "reason": reason,
        "retryable": None,
        "applied": "12.10",
        "allocations": [
            {
                "reference": reference,
                "amount": "12.10",
                "currency": "EUR",
                "from_credit": None,
                "at": AT,
            }
        ],
    }
    row.update(fields)
    return row


def test_payments_at_80_columns_are_a_table_with_upstream_text_as_text() -> None:
    report = {
        "account_id": "evil[/]",
        "currency": "EUR",
        "payments": [
            payment("urn:bridge [bold]x[/bold]", "PF-shop-0001", "overpayment"),
            payment(
                "urn:bridge esc",
                "2026-000001",
                "declined\x1b[31m by the issuer, try another card",
                kind="failed",
                retryable=False,
                applied=None,
                allocations=[],
            ),
        ],
        "credit_held": [
            {"currency": "EUR", "reason": "overpayment", "amount": "7.90", "pieces": 1}
        ],
    }
    text = shown(render_payments.payments_view(report))
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "Payments of evil[/] (EUR)" in text
    assert "urn:bridge [bold]x[/bold]" in text
    assert "\x1b" not in text and "declined\\x1b[31m" in text
    assert "(not retried)" in text
    header = next(line for line in text.splitlines() if line.startswith("#"))
    assert header.split() == ["#", "date", "kind", "amount", "reference", "reason"]


def test_receivables_at_80_columns_show_a_long_account_id_and_every_bucket() -> None:
    buckets = {
        "current": "1.00",
        "days_1_30": "2.00",
        "days_31_60": "3.00",
        "days_61_90": "4.00",
        "days_over_90": "1234567.89",
        "total": "1234577.89",
    }
    report = {
        "as_of": date(2026, 12, 31),
        "accounts": [{"account_id": LONG_ID, "currency": "EUR", **buckets, "documents": []}],
        "totals": [{"currency": "EUR", **buckets}],
    }
    text = shown(render_payments.receivables_view(report))
    assert max(len(line) for line in text.splitlines()) <= 80
    assert LONG_ID in text and "1234577.89" in text and "…" not in text


def test_notices_at_80_columns_keep_documents_and_dates_whole() -> None:
    notice = {
        "account_id": LONG_ID,
        "notice_id": "PF-shop-0001/payment_failed",
        "kind": "payment_failed",
        "reference": "PF-shop-0001",
        "amount_due": "19.00",
        "currency": "EUR",
        "reason": "insufficient funds [red]on[/red] the card",
        "attempt": 2,
        "next_attempt_at": datetime(2026, 11, 8, 17, tzinfo=UTC),
        "opened_at": AT,
        "resolved_at": None,
        "state": "open",
        "updated_at": AT,
    }
    dunning = {
        "account_id": LONG_ID,
        "state": "past_due",
        "since": AT,
        "reference": "PF-shop-0001",
        "reason": "attempt 1 to collect 19.00 EUR for PF-shop-0001 failed",
    }
    report = {"notices": [notice], "dunning": [dunning]}
    for account in (None, LONG_ID):
        text = shown(render_payments.notices_view(report, account))
        assert max(len(line) for line in text.splitlines()) <= 80
        assert LONG_ID in text and "PF-shop-0001" in text and "2026-11-08 17:00" in text
        assert "[red]on[/red]" in text and "…" not in text
