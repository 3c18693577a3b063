"""The pure part of a partition batch: in-batch and stored duplicates, mapped once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from commands.models import AccountCommand, OpenAccount, RecordEmailsSent
from consumers.batch import PartitionBatch
from consumers.mapping import to_commands
from consumers.messages import TOPIC_TYPES, Record
from consumers.upstream_publisher import Outgoing, Upstream

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
LATEST = datetime(2026, 12, 1, tzinfo=UTC)


def records(messages: list[Outgoing]) -> list[Record]:
    return [
        Record(m.topic, 0, offset, m.key.encode(), m.value) for offset, m in enumerate(messages)
    ]


def emails(accounts: list[str], mta: Upstream | None = None) -> list[Outgoing]:
    mta = mta or Upstream("urn:test:mta")
    return [
        mta.event(
            "billing.email-sent",
            "email.sent",
            T0 + timedelta(minutes=i),
            {"account_id": account, "message_id": f"<{i}@test>", "route": "platform"},
        )
        for i, account in enumerate(accounts)
    ]


def emails_of(command: AccountCommand) -> tuple[str, list[int]]:
    assert isinstance(command, RecordEmailsSent)
    return command.account_id, [e.origin.offset for e in command.emails]


def email_batch(batch_records: list[Record]) -> PartitionBatch:
    return PartitionBatch(batch_records, TOPIC_TYPES["email_sent"], LATEST)


def test_dropping_stored_duplicates_gives_what_mapping_only_the_fresh_messages_gives() -> None:
    # acme's first email is stored already: its command moves behind globex's.
    batch_records = records(emails(["acme", "globex", "acme", "globex", "initech"]))
    batch = email_batch(batch_records)
    known = {batch.keys[0], batch.keys[3]}
    commands = batch.drop_known(to_commands(batch.accepted), known)
    fresh = email_batch([r for i, r in enumerate(batch_records) if i not in (0, 3)])
    assert commands == to_commands(fresh.accepted)
    assert [emails_of(c) for c in commands] == [("globex", [1]), ("acme", [2]), ("initech", [4])]
    assert batch.duplicates == 2


def test_an_account_whose_emails_are_all_stored_gets_no_command() -> None:
    batch = email_batch(records(emails(["acme", "globex", "acme"])))
    commands = batch.drop_known(to_commands(batch.accepted), {batch.keys[0], batch.keys[2]})
    assert [emails_of(c) for c in commands] == [("globex", [1])]
    assert batch.duplicates == 2


def test_a_batch_without_stored_duplicates_keeps_its_commands_as_mapped() -> None:
    batch = email_batch(records(emails(["acme", "globex"])))
    mapped = to_commands(batch.accepted)
    assert batch.drop_known(mapped, set()) is mapped
    assert batch.duplicates == 0


def test_in_batch_and_stored_duplicates_are_counted_once_each() -> None:
    mta = Upstream("urn:test:mta")
    sent = emails(["acme", "globex"], mta)
    republished = Outgoing(sent[0].topic, sent[0].key, sent[0].value)  # same source and id
    batch = email_batch(records([*sent, republished]))
    assert (len(batch.accepted), batch.duplicates) == (2, 1)
    commands = batch.drop_known(to_commands(batch.accepted), {batch.keys[1]})
    assert [c.account_id for c in commands] == ["acme"]
    assert batch.duplicates == 2


def test_a_stored_account_fact_is_dropped_and_the_others_keep_their_order() -> None:
    panel = Upstream("urn:test:panel")
    opened = [
        panel.event(
            "billing.accounts",
            "account.opened",
            T0,
            {
                "account_id": a,
                "plan": "email-starter",
                "payment_mode": "prepaid",
                "currency": "EUR",
            },
        )
        for a in ("acme", "globex", "initech")
    ]
    batch = PartitionBatch(records(opened), TOPIC_TYPES["accounts"], LATEST)
    commands = batch.drop_known(to_commands(batch.accepted), {batch.keys[1]})
    assert [(type(c), c.account_id) for c in commands] == [
        (OpenAccount, "acme"),
        (OpenAccount, "initech"),
    ]
    assert batch.duplicates == 1
