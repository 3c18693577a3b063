"""What the CLI prints: upstream text shown as text, and nothing cut at 80 columns."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console, RenderableType
from rich.text import Text

from ledger.entrypoints.cli import escaping, render, render_history
from ledger.entrypoints.cli.tables import cell

LONG_ID = "northwind-trading-company-emea-000000042"  # 40 characters


def shown(renderable: RenderableType, width: int = 80) -> str:
    """What a terminal of ``width`` columns would show (no colour codes)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, emoji=False)
    console.print(renderable)
    return buffer.getvalue()


def balance_row(account_id: str, balance: str = "12.50", **fields: Any) -> dict[str, Any]:
    row = {
        "account_id": account_id,
        "payment_mode": "prepaid",
        "plan_id": "email-starter",
        "balance": balance,
        "currency": "EUR",
        "sending_blocked": False,
        "status": "open",
    }
    row.update(fields)
    return row


def test_markup_in_an_account_id_is_printed_as_it_is() -> None:
    rows = [balance_row("evil[/]"), balance_row("[bold red]acme[/bold red]")]
    text = shown(render.balance_table(rows), width=120)
    assert "evil[/]" in text
    assert "[bold red]acme[/bold red]" in text


def test_escape_sequences_in_upstream_text_never_reach_the_terminal() -> None:
    rows = [balance_row("acme\x1b[31m\x07"), balance_row("csi\x9b2J")]
    text = shown(render.balance_table(rows), width=120)
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "acme\\x1b[31m\\x07" in text
    assert "csi\\x9b2J" in text


def test_backslashes_and_emoji_codes_are_printed_as_they_are() -> None:
    rows = [balance_row("ends\\"), balance_row("\\[x"), balance_row(":warning:")]
    lines = shown(render.balance_table(rows), width=120).splitlines()
    firsts = [line.split()[0] for line in lines if "prepaid" in line]
    assert firsts == ["ends\\", "\\[x", ":warning:"]


@given(st.text())
def test_safe_text_renders_back_to_the_cleaned_text_without_controls(value: str) -> None:
    cleaned = escaping.clean(value)
    # Embedded in markup, as the CLI prints it (rich doubles a trailing backslash so
    # that it cannot escape the tag that follows).
    markup = f"[bold]{escaping.safe(value)}[/bold]"
    assert Text.from_markup(markup, emoji=False).plain == cleaned
    assert cell(escaping.safe(value)).plain == cleaned  # on its own, as a table cell
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in cleaned)


def test_clean_keeps_ordinary_text_unchanged() -> None:
    assert escaping.clean("Müller & Söhne [EU] 10.50 €") == "Müller & Söhne [EU] 10.50 €"


def document_row(number: str, total: str) -> dict[str, Any]:
    return {
        "number": number,
        "account_id": LONG_ID,
        "kind": "receipt",
        "period": "2026-10",
        "issued_on": "2026-11-01",
        "due_on": None,
        "subtotal": "1234.50",
        "tax": "259.25",
        "total": total,
        "currency": "EUR",
        "status": "paid",
        "settled_by": "prepaid balance",
    }


def test_documents_at_80_columns_show_every_number_id_and_amount_in_full() -> None:
    rows = [document_row("2026-000001", "1493.75"), document_row("2026-000002", "1493.76")]
    text = shown(render.documents_table(rows), width=80)
    assert "…" not in text
    for row in rows:
        for value in row.values():
            if value is not None:
                assert str(value) in text, value
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_table_that_fits_is_shown_as_a_table() -> None:
    rows = [balance_row("acme"), balance_row("globex", balance="-3.20")]
    lines = shown(render.balance_table(rows), width=100).splitlines()
    header = next(line for line in lines if "account" in line)
    assert header.split() == ["account", "mode", "plan", "balance", "currency", "sending", "status"]
    assert any(
        line.split()[:4] == ["globex", "prepaid", "email-starter", "-3.20"] for line in lines
    )


def test_balances_of_a_40_character_account_id_are_not_cut() -> None:
    text = shown(render.balance_table([balance_row(LONG_ID, balance="-1234567.89")]), width=80)
    assert LONG_ID in text and "-1234567.89" in text and "…" not in text


def test_history_details_wrap_but_versions_and_event_names_stay_whole() -> None:
    events = [
        {
            "version": 12,
            "event": "DocumentIssued",
            "effective_at": datetime(2026, 11, 1, 7, tzinfo=UTC),
            "recorded_at": datetime(2026, 11, 1, 7, 0, 3, tzinfo=UTC),
            "details": f"receipt 2026-000123 for 2026-10: total 1493.75 EUR ({LONG_ID})",
        }
    ]
    text = shown(render_history.history_table(LONG_ID, events), width=80)
    assert "…" not in text
    assert "DocumentIssued" in text and "2026-000123" in text and "1493.75" in text
    assert LONG_ID in text.replace("\n", "").replace(" ", "")


def test_a_document_at_80_columns_names_its_number_account_and_total_in_full() -> None:
    document = {
        "number": f"PF-{LONG_ID}-0001",
        "account_id": LONG_ID,
        "kind": "proforma",
        "period": "2026-10-15/2027-10-15",
        "issued_on": "2026-10-15",
        "due_on": "2026-10-15",
        "currency": "EUR",
        "subtotal": "1234.50",
        "tax_rate": "0.21",
        "tax": "259.25",
        "total": "1493.75",
        "status": "issued",
        "proforma": None,
        "billable_contacts": 1100,
        "settled_by": None,
        "lines": [
            {
                "line_no": 1,
                "kind": "subscription",
                "description": "contacts-basic 1,001-2,500 contacts, 12 months, with automation",
                "quantity": 12,
                "unit_price": "102.875",
                "amount": "1234.50",
            }
        ],
    }
    text = shown(render.document_panel(document), width=80)
    assert "…" not in text
    for value in [f"Proforma PF-{LONG_ID}-0001", LONG_ID, "1,100", "102.875", "1234.50", "1493.75"]:
        assert value in text, value


def test_a_contacts_account_s_emails_are_shown_by_allowance_month() -> None:
    from tests.unit.contacts_builders import emails, open_account, utc

    account = open_account()
    account.record_emails(emails(3, utc(2027, 1, 20)) + emails(1, utc(2027, 1, 21), "custom_smtp"))
    (recorded,) = [e for e in account.collect_events() if type(e).__name__ == "EmailsRecorded"]
    summary = render_history.event_summary(recorded)
    assert summary["details"] == "allowance month from 2027-01-15: 3 platform, 1 custom SMTP"
