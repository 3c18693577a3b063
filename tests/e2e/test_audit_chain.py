"""``ledger audit chain``: history billed through the broker, then tampered with by
SQL; every tampering is found and located, and a published head proves a prefix."""

from __future__ import annotations

import re

from tests.e2e.conftest import AuditedBooks
from tests.support import ledger_command, read_topic

HEAD = re.compile(r"head (\d+):([0-9a-f]{64})")


def intact_head(books: AuditedBooks) -> str:
    code, output = books.audit("chain")
    assert code == 0, output
    match = HEAD.search(output)
    assert match is not None, output
    return f"{match[1]}:{match[2]}"


def test_an_untouched_history_is_intact_and_its_head_is_what_head_prints(
    audited_once: AuditedBooks,
) -> None:
    ids = audited_once.ids()
    _, head = audited_once.audit("head")
    assert head.startswith(f"{ids[-1]}:")
    code, output = audited_once.audit("chain")
    assert code == 0
    assert output.splitlines() == [f"chain intact: {len(ids)} events", f"head {head}"]
    code, output = audited_once.audit("chain", "--against", head)
    assert code == 0 and output.endswith(f"the head published at {ids[-1]} is a prefix of it")


def test_a_changed_event_state_is_found_at_that_event(audited: AuditedBooks) -> None:
    target = audited.ids()[9]  # after the partition logs: an account's event
    # One bit of its state flipped, as an edit of an amount or a count would.
    audited.sql(
        "UPDATE {events} SET state = set_byte(state, 20, get_byte(state, 20) # 1) "
        "WHERE notification_id = %s",
        target,
    )
    code, output = audited.audit("chain")
    assert code == 1
    assert output.startswith(f"chain broken at position {target}: the event is not as it was")
    assert "(9 events before it are intact)" in " ".join(output.split())  # wrapped at 80


def test_a_deleted_event_is_found_and_named(audited: AuditedBooks) -> None:
    target = audited.ids()[3]
    audited.sql("DELETE FROM {events} WHERE notification_id = %s", target)
    code, output = audited.audit("chain")
    assert code == 1
    assert output.startswith(f"chain broken at position {target}: a link without its event")


def test_two_events_reordered_are_found_at_the_first(audited: AuditedBooks) -> None:
    first, second = audited.ids()[2:4]
    audited.sql(
        "UPDATE {events} SET notification_id = -notification_id WHERE notification_id IN (%s, %s)",
        first,
        second,
    )
    audited.sql(
        "UPDATE {events} SET notification_id = CASE notification_id WHEN %s THEN %s ELSE %s END "
        "WHERE notification_id < 0",
        -first,
        second,
        first,
    )
    code, output = audited.audit("chain")
    assert code == 1
    assert output.startswith(f"chain broken at position {first}:")


def test_a_truncated_tail_reappended_is_caught_only_against_a_published_head(
    audited: AuditedBooks,
) -> None:
    published = intact_head(audited)
    ids = audited.ids()
    cut = ids[len(ids) // 2]
    audited.sql("DELETE FROM {events} WHERE notification_id >= %s", cut)
    audited.sql("DELETE FROM {chain} WHERE notification_id >= %s", cut)
    audited.more("initech", 4)  # the ledger writes on: its links follow the shortened chain
    code, output = audited.audit("chain")
    assert code == 0, output  # consistent in itself: a rewrite of events and links together
    code, output = audited.audit("chain", "--against", published)
    assert code == 1
    assert output.startswith(f"chain broken at position {published.split(':')[0]}:")


def test_a_history_from_before_the_chain_is_backfilled_once_to_the_same_head(
    audited: AuditedBooks,
) -> None:
    head = intact_head(audited)
    audited.sql("DELETE FROM {chain}")
    code, output = audited.audit("chain")
    assert code == 1
    first = audited.ids()[0]
    assert output.startswith(f"chain broken at position {first}: an event without a link")
    result = ledger_command("audit", "backfill", env=audited.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"linked {len(audited.ids())} events stored before the chain")
    assert intact_head(audited) == head  # the same links: the chain did not depend on when
    result = ledger_command("audit", "backfill", env=audited.env)
    assert result.stdout.startswith("linked 0 events")


def test_a_writer_links_unlinked_history_before_its_own_events(audited: AuditedBooks) -> None:
    audited.sql("DELETE FROM {chain}")
    audited.more("initech", 4)
    ids = audited.ids()
    code, output = audited.audit("chain")
    assert code == 0, output
    assert output.splitlines()[0] == f"chain intact: {len(ids)} events"
    assert output.splitlines()[1].startswith(f"head {ids[-1]}:")


def test_a_malformed_published_head_is_one_line_on_stderr(audited_once: AuditedBooks) -> None:
    result = ledger_command("audit", "chain", "--against", "12:abc", env=audited_once.env)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: not a chain head (POSITION:HASH")


def test_the_head_is_published_when_it_moved_and_proves_a_prefix_later(
    audited: AuditedBooks,
) -> None:
    publisher = audited.services.chain_head_publisher()
    first = publisher.publish_if_moved()
    assert first is not None and publisher.publish_if_moved() is None  # not moved: not again
    audited.more("initech", 4)
    second = publisher.publish_if_moved()
    assert second is not None and second.position > first.position
    topic = audited.services.settings.topic_audit
    messages = read_topic(audited.services, topic, expected=2)
    assert [(m["id"], m["type"], m["data"]) for m in messages] == [
        (
            f"chain-head:{h.position}",
            "audit.chain-head",
            {"position": h.position, "hash": h.hash.hex()},
        )
        for h in (first, second)
    ]
    code, output = audited.audit("chain", "--against", f"{first.position}:{first.hash.hex()}")
    assert code == 0 and output.endswith(
        f"the head published at {first.position} is a prefix of it"
    )


def test_an_event_forged_below_the_first_id_is_found(audited: AuditedBooks) -> None:
    first = audited.ids()[0]
    audited.sql(
        "INSERT INTO {events} (originator_id, originator_version, topic, state, notification_id)"
        " SELECT originator_id, originator_version + 1000, topic, state, -1 FROM {events}"
        " WHERE notification_id = %s",
        first,
    )
    code, output = audited.audit("chain")
    assert code == 1
    assert output.startswith("chain broken at position -1: an event without a link")


def test_upgrade_builds_the_new_index_drops_the_old_and_backfills_once(
    audited: AuditedBooks,
) -> None:
    head = intact_head(audited)
    schema = audited.services.settings.database_schema
    # The database as the previous version left it: its index, no chain.
    audited.sql(f'DROP INDEX "{schema}".ledger_dedupe_originator_idx')
    audited.sql(
        f'CREATE INDEX ledger_dedupe_message_idx ON "{schema}".ledger_dedupe'
        " (account_id, message_id)"
    )
    audited.sql("DELETE FROM {chain}")
    result = ledger_command("upgrade", env=audited.env)
    assert result.returncode == 0, result.stderr
    events = len(audited.ids())
    assert result.stdout.splitlines() == [
        "ledger_dedupe_originator_idx: built; ledger_dedupe_message_idx: absent",
        f"hash chain: linked {events:,} events stored before it",
    ]
    indexes = {
        str(row[0])
        for row in audited.sql(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'ledger_dedupe'",
            schema,
        )
    }
    assert indexes == {"ledger_dedupe_pkey", "ledger_dedupe_originator_idx"}
    assert intact_head(audited) == head
    again = ledger_command("upgrade", env=audited.env)
    assert again.stdout.splitlines() == [
        "ledger_dedupe_originator_idx: present; ledger_dedupe_message_idx: absent",
        "hash chain: linked 0 events stored before it",
    ]
