"""``ledger audit chain``: history billed through the broker, then tampered with by
SQL; every tampering is found and located, and a published head proves a prefix."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.sql import SQL, Identifier

from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.support import Upstreams, ledger_command, ledger_env, read_topic, utc

HEAD = re.compile(r"head (\d+):([0-9a-f]{64})")


@dataclass
class Books:
    services: Services
    env: dict[str, str]
    upstreams: Upstreams

    def sql(self, statement: str, *params: object) -> list[tuple[object, ...]]:
        """``statement`` with ``{events}`` / ``{chain}`` naming this test's tables."""
        schema = self.services.settings.database_schema
        tables = {
            "events": SQL("{}.{}").format(Identifier(schema), Identifier("ledger_events")),
            "chain": SQL("{}.{}").format(Identifier(schema), Identifier("ledger_chain")),
        }
        with psycopg.connect(self.services.database_url, autocommit=True) as conn:
            cursor = conn.execute(SQL(statement).format(**tables), params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def ids(self) -> list[int]:
        return [int(r[0]) for r in self.sql("SELECT notification_id FROM {events} ORDER BY 1")]  # type: ignore[call-overload]

    def audit(self, *args: str) -> tuple[int, str]:
        result = ledger_command("audit", *args, env=self.env)
        assert "Traceback" not in result.stderr, result.stderr
        return result.returncode, result.stdout.strip()

    def more(self, account: str, day: int) -> None:
        """More history written by the ledger: an account opened and billed."""
        up = self.upstreams
        up.publish(
            [
                up.opened(account, utc(2026, 11, day)),
                *up.emails(account, 3, utc(2026, 11, day, 1)),
            ]
        )
        consumer = self.services.consumer()
        consumer.drain(timeout=60)
        consumer.close()


@pytest.fixture
def books(make_services: MakeServices) -> Iterator[Books]:
    services = make_services()
    written = Books(services, ledger_env(services.settings), Upstreams(services))
    written.more("acme", 2)
    written.more("globex", 3)
    services.close_periods(utc(2026, 12, 1, 7))
    yield written
    written.upstreams.close()


def intact_head(books: Books) -> str:
    code, output = books.audit("chain")
    assert code == 0, output
    match = HEAD.search(output)
    assert match is not None, output
    return f"{match[1]}:{match[2]}"


def test_an_untouched_history_is_intact_and_its_head_is_what_head_prints(books: Books) -> None:
    ids = books.ids()
    code, output = books.audit("chain")
    assert code == 0
    assert output.startswith(f"chain intact: {len(ids)} events, head {ids[-1]}:")
    _, head = books.audit("head")
    assert head == intact_head(books)
    code, output = books.audit("chain", "--against", head)
    assert code == 0 and output.endswith(f"{ids[-1]} is a prefix of it")


def test_a_changed_event_state_is_found_at_that_event(books: Books) -> None:
    target = books.ids()[9]  # after the partition logs: an account's event
    # One bit of its state flipped, as an edit of an amount or a count would.
    books.sql(
        "UPDATE {events} SET state = set_byte(state, 20, get_byte(state, 20) # 1) "
        "WHERE notification_id = %s",
        target,
    )
    code, output = books.audit("chain")
    assert code == 1
    assert output.startswith(f"chain broken at position {target}: the event is not as it was")
    assert "(9 events before it are intact)" in output


def test_a_deleted_event_is_found_and_named(books: Books) -> None:
    target = books.ids()[3]
    books.sql("DELETE FROM {events} WHERE notification_id = %s", target)
    code, output = books.audit("chain")
    assert code == 1
    assert output.startswith(f"chain broken at position {target}: a link without its event")


def test_two_events_reordered_are_found_at_the_first(books: Books) -> None:
    first, second = books.ids()[2:4]
    books.sql(
        "UPDATE {events} SET notification_id = -notification_id WHERE notification_id IN (%s, %s)",
        first,
        second,
    )
    books.sql(
        "UPDATE {events} SET notification_id = CASE notification_id WHEN %s THEN %s ELSE %s END "
        "WHERE notification_id < 0",
        -first,
        second,
        first,
    )
    code, output = books.audit("chain")
    assert code == 1
    assert output.startswith(f"chain broken at position {first}:")


def test_a_truncated_tail_reappended_is_caught_only_against_a_published_head(books: Books) -> None:
    published = intact_head(books)
    ids = books.ids()
    cut = ids[len(ids) // 2]
    books.sql("DELETE FROM {events} WHERE notification_id >= %s", cut)
    books.sql("DELETE FROM {chain} WHERE notification_id >= %s", cut)
    books.more("initech", 4)  # the ledger writes on: its links follow the shortened chain
    code, output = books.audit("chain")
    assert code == 0, output  # consistent in itself: a rewrite of events and links together
    code, output = books.audit("chain", "--against", published)
    assert code == 1
    assert output.startswith(f"chain broken at position {published.split(':')[0]}:")


def test_a_history_from_before_the_chain_is_backfilled_once_to_the_same_head(
    books: Books,
) -> None:
    head = intact_head(books)
    books.sql("DELETE FROM {chain}")
    code, output = books.audit("chain")
    assert code == 1
    first = books.ids()[0]
    assert output.startswith(f"chain broken at position {first}: an event without a link")
    result = ledger_command("audit", "backfill", env=books.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"linked {len(books.ids())} events stored before the chain")
    assert intact_head(books) == head  # the same links: the chain did not depend on when
    result = ledger_command("audit", "backfill", env=books.env)
    assert result.stdout.startswith("linked 0 events")


def test_a_writer_links_unlinked_history_before_its_own_events(books: Books) -> None:
    books.sql("DELETE FROM {chain}")
    books.more("initech", 4)
    ids = books.ids()
    code, output = books.audit("chain")
    assert code == 0, output
    assert output.startswith(f"chain intact: {len(ids)} events, head {ids[-1]}:")


def test_a_malformed_published_head_is_one_line_on_stderr(books: Books) -> None:
    result = ledger_command("audit", "chain", "--against", "12:abc", env=books.env)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: not a chain head (POSITION:HASH")


def test_the_head_is_published_when_it_moved_and_proves_a_prefix_later(books: Books) -> None:
    publisher = books.services.chain_head_publisher()
    first = publisher.publish_if_moved()
    assert first is not None and publisher.publish_if_moved() is None  # not moved: not again
    books.more("initech", 4)
    second = publisher.publish_if_moved()
    assert second is not None and second.position > first.position
    topic = books.services.settings.topic_audit
    messages = read_topic(books.services, topic, expected=2)
    assert [(m["id"], m["type"], m["data"]) for m in messages] == [
        (
            f"chain-head:{h.position}",
            "audit.chain-head",
            {"position": h.position, "hash": h.hash.hex()},
        )
        for h in (first, second)
    ]
    code, output = books.audit("chain", "--against", f"{first.position}:{first.hash.hex()}")
    assert code == 0 and output.endswith(f"{first.position} is a prefix of it")
