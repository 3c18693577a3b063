"""``ledger audit unbilled``: every accepted email on one document line, every
period past its grace documented, gapless numbers; a deleted dedupe row, a
removed document and late usage, each as an auditor sees it.

The books (tests/e2e/conftest.py ``audited``): acme and globex, opened on 2 and 3
November on the starter plan (postpaid), 3 emails each, closed on 1 December
07:00 UTC: invoices 2026-000001 and 2026-000002 for November, each with
"Included emails" x 3.
"""

from __future__ import annotations

from tests.e2e.conftest import AuditedBooks
from tests.support import utc

AS_OF = "2026-12-01T07:00:00Z"
ISSUED = "ledger.emails.account:Account.DocumentIssued"
RECORDED = "ledger.emails.account:Account.EmailsRecorded"


def unbilled(books: AuditedBooks, *args: str) -> tuple[int, list[str]]:
    code, output = books.audit("unbilled", "--as-of", AS_OF, *args)
    return code, output.splitlines()


def test_the_closed_month_bills_every_accepted_email(audited: AuditedBooks) -> None:
    assert unbilled(audited) == (
        0,
        [
            "as of 2026-12-01T07:00:00+00:00, grace 6:00:00:",
            "6 emails accepted by 2 email accounts",
            "  6 on document lines",
            "  0 waiting for their document (open months, late usage)",
            "numbering checked for: 2026",
            "sound: nothing accepted and never billed",
        ],
    )


def test_late_emails_wait_for_the_next_document(audited: AuditedBooks) -> None:
    up = audited.upstreams
    up.publish(up.emails("acme", 2, utc(2026, 11, 20)))  # November, documented already
    consumer = audited.services.consumer()
    consumer.drain(timeout=60)
    consumer.close()
    code, lines = unbilled(audited)
    assert code == 0
    assert lines[1:4] == [
        "8 emails accepted by 2 email accounts",
        "  6 on document lines",
        "  2 waiting for their document (open months, late usage)",
    ]


def test_a_deleted_dedupe_row_is_an_email_its_event_bills_twice_over(
    audited: AuditedBooks,
) -> None:
    schema = audited.services.settings.database_schema
    (version,) = audited.sql(
        "SELECT originator_version FROM {events} WHERE topic = %s ORDER BY notification_id LIMIT 1",
        RECORDED,
    )[0]
    audited.sql(
        f'DELETE FROM "{schema}".ledger_dedupe WHERE ctid = (SELECT ctid FROM'
        f' "{schema}".ledger_dedupe WHERE account_id = %s AND message_id IS NOT NULL LIMIT 1)',
        "acme",
    )
    code, lines = unbilled(audited)
    assert code == 1
    assert f"keys: acme: event {version} records 3 emails; 2 accepted messages point at it" in lines
    assert lines[-1] == "1 finding(s)"


def test_a_removed_document_is_a_hole_in_its_history_and_a_gap_in_the_numbers(
    audited: AuditedBooks,
) -> None:
    first = audited.sql(
        "SELECT notification_id FROM {events} WHERE topic = %s ORDER BY 1 LIMIT 1", ISSUED
    )[0][0]
    audited.sql("DELETE FROM {events} WHERE notification_id = %s", first)
    code, lines = unbilled(audited, "--json")
    assert code == 1
    import json

    found = json.loads("\n".join(lines))
    assert found["sound"] is False
    assert found["waiting"] == 3  # acme's November emails, on no document now
    # acme: opened (1), month opened (2), emails (3), November's invoice (4, removed),
    # December opened (5).
    assert [(f["kind"], f["account_id"], f["detail"]) for f in found["findings"]] == [
        (
            "history",
            "acme",
            "cannot be replayed: version 4 is missing (the next stored event is version 5)",
        ),
        ("numbering", "-", "2026-000001 is on no document"),
    ]


def test_a_time_to_come_is_refused_in_one_line(audited: AuditedBooks) -> None:
    from tests.support import ledger_command

    result = ledger_command("audit", "unbilled", "--as-of", "2999-01-01T00:00:00Z", env=audited.env)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: --as-of 2999-01-01T00:00:00Z is in the future")
