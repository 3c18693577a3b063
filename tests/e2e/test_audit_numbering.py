"""``ledger audit numbering``: the year's numbers from the stored events, whatever the
documents read model says; a removed or a copied document is found."""

from __future__ import annotations

from tests.e2e.conftest import AuditedBooks

ISSUED = "ledger.emails.account:Account.DocumentIssued"


def numbering(books: AuditedBooks, year: int) -> tuple[int, list[str]]:
    code, output = books.audit("numbering", "--year", str(year))
    return code, output.splitlines()


def test_the_closed_month_numbers_each_document_once(audited_once: AuditedBooks) -> None:
    code, lines = numbering(audited_once, 2026)
    assert (code, lines) == (0, ["2026: 2 numbers allocated; every one on exactly one document"])
    assert numbering(audited_once, 2027) == (
        0,
        ["2027: 0 numbers allocated; every one on exactly one document"],
    )


def test_a_removed_document_is_a_gap_and_a_copied_one_a_duplicate(audited: AuditedBooks) -> None:
    first, second = (
        int(str(row[0]))
        for row in audited.sql(
            "SELECT notification_id FROM {events} WHERE topic = %s ORDER BY 1", ISSUED
        )
    )
    audited.sql("DELETE FROM {events} WHERE notification_id = %s", first)
    audited.sql(
        "INSERT INTO {events} (originator_id, originator_version, topic, state)"
        " SELECT originator_id, originator_version + 1000, topic, state FROM {events}"
        " WHERE notification_id = %s",
        second,
    )
    code, lines = numbering(audited, 2026)
    assert code == 1
    assert lines[0] == "2026: 2 numbers allocated"
    assert lines[1] == "gap: 2026-000001 is on no document"
    assert lines[2].startswith("duplicate: 2026-000002 is on ")
    assert len(lines) == 3


def test_a_year_out_of_range_is_one_line_on_stderr(audited_once: AuditedBooks) -> None:
    from tests.support import ledger_command

    result = ledger_command("audit", "numbering", "--year", "20266", env=audited_once.env)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: not a year: 20266"
