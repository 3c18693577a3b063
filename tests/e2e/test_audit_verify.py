"""``ledger audit verify``: the read models replayed from history equal the live ones;
a row changed or removed by SQL is found, named by its key, with both versions."""

from __future__ import annotations

import json

from tests.e2e.conftest import AuditedBooks
from tests.support import catch_up


def verify(books: AuditedBooks, *args: str) -> tuple[int, str]:
    return books.audit("verify", *args)


def read_model_sql(books: AuditedBooks, statement: str) -> None:
    """``statement`` on a read model table; ``{schema}`` is this test's schema."""
    schema = books.services.settings.database_schema
    books.sql(statement.replace("{schema}", f'"{schema}"'))


def test_read_models_caught_up_equal_the_replay(audited_once: AuditedBooks) -> None:
    catch_up(audited_once.services)
    head = audited_once.ids()[-1]
    code, output = verify(audited_once)
    assert code == 0, output
    lines = output.splitlines()
    assert f"balances: live at {head:,}, replayed to {head:,}" in lines
    assert lines[-1] == f"identical: 14 tables; {head:,} events replayed"


def test_a_balance_changed_by_sql_is_found_with_both_versions(audited: AuditedBooks) -> None:
    catch_up(audited.services)
    read_model_sql(
        audited, "UPDATE {schema}.balances SET balance = balance + 1 WHERE account_id = 'acme'"
    )
    code, output = verify(audited, "--json")
    assert code == 1
    report = json.loads(output)
    [difference] = report["differences"]
    assert (difference["table"], difference["key"]) == ("balances", {"account_id": "acme"})
    assert float(difference["live"]["balance"]) == float(difference["replayed"]["balance"]) + 1


def test_a_removed_document_line_is_found_as_missing_from_the_live_rows(
    audited: AuditedBooks,
) -> None:
    catch_up(audited.services)
    schema = audited.services.settings.database_schema
    [(number, line_no)] = audited.sql(
        f'SELECT number, min(line_no) FROM "{schema}".document_lines'
        " GROUP BY number ORDER BY number LIMIT 1"
    )
    read_model_sql(
        audited,
        f"DELETE FROM {{schema}}.document_lines WHERE number = '{number}' AND line_no = {line_no}",
    )
    code, output = verify(audited)
    assert code == 1
    assert f"differs: document_lines [number={number}, line_no={line_no}]" in output, output
    assert "  live:     (no row)" in output
    assert "1 difference(s)" in output


def test_one_accounts_rows_are_verified_alone(audited: AuditedBooks) -> None:
    catch_up(audited.services)
    read_model_sql(
        audited, "UPDATE {schema}.balances SET balance = balance + 1 WHERE account_id = 'globex'"
    )
    code, output = verify(audited, "--account", "acme")
    assert code == 0, output
    code, output = verify(audited, "--account", "globex")
    assert code == 1 and "differs: balances [account_id=globex]" in output


def test_a_lagging_read_model_is_reported_as_behind(audited: AuditedBooks) -> None:
    catch_up(audited.services)
    before = audited.ids()[-1]
    audited.more("initech", 4)  # stored, not yet applied to the read models
    head = audited.ids()[-1]
    code, output = verify(audited)
    assert code == 1  # its rows lack the newer events: a difference, explained by the lag
    assert (
        f"balances: live at {before:,}, replayed to {head:,} ({head - before:,} events behind)"
        in output.splitlines()
    )


def test_an_unknown_account_is_one_line_on_stderr(audited_once: AuditedBooks) -> None:
    from tests.support import ledger_command

    result = ledger_command("audit", "verify", "--account", "nobody", env=audited_once.env)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: unknown account 'nobody'"
