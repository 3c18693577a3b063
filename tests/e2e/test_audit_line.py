"""``ledger audit line NUMBER LINE``: a document line back to its events and emails.

acme (postpaid, starter: 1,000 emails included, then tier 1) sends 700 emails on
15 October, then in a second batch 500 more and 3 by custom SMTP. October's
invoice 2026-000001 has: 1 fee, 2 included x 1,000, 3 tier 1 x 200, 4 custom
SMTP x 3. After the close, 5 emails dated 20 October arrive: late usage, on
November's invoice 2026-000002 (1 fee, 2 late usage x 5).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from consumers.upstream_publisher import Outgoing
from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.support import Upstreams, ledger_command, ledger_env, utc


def message_ids(messages: list[Outgoing]) -> list[str]:
    return [json.loads(m.value)["data"]["message_id"] for m in messages]


def drain(services: Services) -> None:
    consumer = services.consumer()
    consumer.drain(timeout=60)
    consumer.close()


class Books:
    def __init__(self, env: dict[str, str], sent: dict[str, list[str]]) -> None:
        self.env, self.sent = env, sent

    def line(self, *args: str) -> tuple[int, Any]:
        result = ledger_command("audit", "line", *args, "--json", env=self.env)
        assert "Traceback" not in result.stderr, result.stderr
        return result.returncode, json.loads(result.stdout) if result.stdout else result.stderr


@pytest.fixture(scope="module")
def books(module_services: MakeServices) -> Books:
    """Built once: the tests read them (the one that deletes a row puts it back)."""
    services = module_services()
    up = Upstreams(services)
    first = up.emails("acme", 700, utc(2026, 10, 15))
    up.publish([up.opened("acme", utc(2026, 10, 1)), *first])
    drain(services)
    second = up.emails("acme", 500, utc(2026, 10, 16))
    smtp = up.emails("acme", 3, utc(2026, 10, 16), route="custom_smtp")
    up.publish([*second[:250], *smtp, *second[250:]])
    drain(services)
    services.close_periods(utc(2026, 11, 1, 7))
    late = up.emails("acme", 5, utc(2026, 10, 20))
    up.publish(late)
    drain(services)
    services.close_periods(utc(2026, 12, 1, 7))
    up.close()
    sent = {
        "first": message_ids(first),
        "second": message_ids(second),
        "smtp": message_ids(smtp),
        "late": message_ids(late),
    }
    return Books(ledger_env(services.settings), sent)


def test_the_included_emails_are_the_first_thousand_across_two_events(books: Books) -> None:
    code, found = books.line("2026-000001", "2")
    assert code == 0, found
    assert (found["kind"], found["quantity"], found["counted"]) == ("included", 1000, 1000)
    spans = [(e["emails"], e["from"], e["to"], e["route"]) for e in found["events"]]
    assert spans == [(700, 1, 700, "platform"), (300, 1, 300, "platform")]
    ids = [m["message_id"] for m in found["messages"]]
    assert ids == books.sent["first"] + books.sent["second"][:300]


def test_tier_one_is_the_second_batch_s_last_two_hundred(books: Books, tmp_path: Path) -> None:
    export = tmp_path / "tier1.csv"
    code, found = books.line("2026-000001", "3", "--export", str(export))
    assert code == 0
    assert (found["kind"], found["quantity"], found["counted"], found["messages"]) == (
        "usage",
        200,
        200,
        200,
    )
    with export.open() as file:
        rows = list(csv.DictReader(file))
    assert [r["message_id"] for r in rows] == books.sent["second"][300:]
    offsets = [int(r["kafka_offset"]) for r in rows]
    assert offsets == sorted(offsets) and len(set(r["kafka_partition"] for r in rows)) == 1


def test_custom_smtp_and_late_usage_lines(books: Books) -> None:
    code, found = books.line("2026-000001", "4")
    assert (code, found["kind"], found["counted"]) == (0, "custom_smtp", 3)
    assert [m["message_id"] for m in found["messages"]] == books.sent["smtp"]
    code, found = books.line("2026-000002", "2")
    assert (code, found["kind"], found["counted"]) == (0, "late_usage", 5)
    assert [m["message_id"] for m in found["messages"]] == books.sent["late"]


def test_a_fee_line_names_its_event_and_a_missing_line_is_one_line(books: Books) -> None:
    code, found = books.line("2026-000001", "1")
    assert (code, found["kind"], found["events"], found["fee_event_version"]) == (
        0,
        "fee",
        [],
        2,
    )
    result = ledger_command("audit", "line", "2026-000001", "9", env=books.env)
    assert (result.returncode, result.stderr.strip()) == (
        1,
        "error: 2026-000001 has lines 1 to 4, not 9",
    )


def test_a_line_whose_emails_lost_a_dedupe_row_does_not_add_up(books: Books) -> None:
    import psycopg

    env = books.env
    url, schema = env["LEDGER_DATABASE_URL"], env["LEDGER_DATABASE_SCHEMA"]
    table = f'"{schema}".ledger_dedupe'
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            f"DELETE FROM {table} WHERE message_id = %s RETURNING *", (books.sent["smtp"][0],)
        ).fetchone()
    assert row is not None
    try:
        result = ledger_command("audit", "line", "2026-000001", "4", env=env)
        assert result.returncode == 1
        assert result.stdout.strip().splitlines()[-2:] == [
            "3 emails from 1 event(s) = the line's quantity",
            "1 of them have no accepted message",
        ]
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            placeholders = ", ".join(["%s"] * len(row))
            conn.execute(f"INSERT INTO {table} VALUES ({placeholders})", row)
