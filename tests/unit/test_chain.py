"""The hash chain's rules over events in memory: every tampering is found where it is."""

from __future__ import annotations

import hashlib
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.chain import GENESIS, ChainedEvent, Head, Link, link, links, walk

A = UUID(int=1)
B = UUID(int=2)


def history(n: int = 5) -> list[ChainedEvent]:
    # Notification ids with a gap (7 -> 9), as a rolled-back sequence value leaves.
    ids = [1, 2, 3, 7, 9, 10, 11, 12][:n]
    return [
        ChainedEvent(
            nid, A if i % 2 else B, i + 1, "ledger.emails.account:Account.Opened", b"{}" * i
        )
        for i, nid in enumerate(ids)
    ]


def chained(events: list[ChainedEvent]) -> list[Link]:
    return list(links(GENESIS, events))


def test_the_first_link_is_sha256_of_zeros_then_the_fields_in_their_fixed_encoding() -> None:
    event = ChainedEvent(7, UUID(int=255), 3, "t", b"xy")
    expected = hashlib.sha256(
        bytes(32)
        + (7).to_bytes(8, "big")
        + (3).to_bytes(8, "big")
        + (1).to_bytes(4, "big")
        + (255).to_bytes(16, "big")
        + b"t"
        + (2).to_bytes(8, "big")
        + b"xy"
    ).digest()
    assert link(GENESIS, event) == expected


def test_moving_a_byte_between_topic_and_state_changes_the_link() -> None:
    one = ChainedEvent(1, A, 1, "ab", b"c")
    other = ChainedEvent(1, A, 1, "a", b"bc")
    assert link(GENESIS, one) != link(GENESIS, other)


def test_an_intact_chain_walks_to_its_head() -> None:
    events = history()
    stored = chained(events)
    result = walk(events, stored)
    assert (result.broken, result.checked) == (None, 5)
    assert result.head == Head(9, stored[-1].hash)


def test_an_empty_history_has_no_head_and_no_break() -> None:
    result = walk([], [])
    assert (result.broken, result.head, result.checked) == (None, None, 0)


def test_a_changed_state_breaks_the_chain_at_that_event() -> None:
    events = history()
    stored = chained(events)
    events[2] = replace_state(events[2], b'{"amount": "0.01"}')
    result = walk(events, stored)
    assert result.broken is not None
    assert (result.broken.position, result.checked) == (3, 2)
    assert "not as it was chained" in result.broken.why


def test_a_changed_event_whose_link_was_recomputed_breaks_the_chain_at_the_next_event() -> None:
    events = history()
    stored = chained(events)
    events[2] = replace_state(events[2], b"forged")
    stored[2] = Link(3, link(stored[1].hash, events[2]))
    result = walk(events, stored)
    assert result.broken is not None and result.broken.position == 7


def test_a_deleted_event_is_named_by_its_link() -> None:
    events = history()
    stored = chained(events)
    del events[1]
    result = walk(events, stored)
    assert result.broken is not None
    assert (result.broken.position, result.broken.why) == (2, "a link without its event: deleted")


def test_a_deleted_last_event_is_named_by_its_link() -> None:
    events = history()
    stored = chained(events)
    result = walk(events[:-1], stored)
    assert result.broken is not None and result.broken.position == 9


def test_an_inserted_event_is_found() -> None:
    events = history()
    stored = chained(events)
    events.insert(3, ChainedEvent(5, A, 99, "t", b"inserted"))
    result = walk(events, stored)
    assert result.broken is not None and result.broken.position == 5
    assert "without a link" in result.broken.why


def test_two_events_swapped_break_the_chain_at_the_first_of_them() -> None:
    events = history()
    stored = chained(events)
    first, second = events[1], events[2]
    events[1] = second._replace(notification_id=first.notification_id)
    events[2] = first._replace(notification_id=second.notification_id)
    result = walk(events, stored)
    assert result.broken is not None and result.broken.position == 2


def test_a_rewritten_tail_rechained_is_consistent_alone_and_caught_against_a_published_head() -> (
    None
):
    events = history(8)
    published = Head(events[5].notification_id, chained(events)[5].hash)  # at position 10
    rewritten = [*events[:4], *[replace_state(e, b"rewritten") for e in events[4:]]]
    stored = chained(rewritten)
    assert walk(rewritten, stored).broken is None
    result = walk(rewritten, stored, against=published)
    assert result.broken is not None and result.broken.position == 10
    assert "differs here from the published head" in result.broken.why


def test_a_truncated_tail_reappended_under_new_ids_is_caught_against_a_published_head() -> None:
    events = history(8)
    published = Head(12, chained(events)[-1].hash)
    shorter = events[:5]  # up to 9; re-appended events get ids after the old ones
    reappended = [*shorter, ChainedEvent(13, A, 6, "t", b"x"), ChainedEvent(14, A, 7, "t", b"y")]
    result = walk(reappended, chained(reappended), against=published)
    assert result.broken is not None and result.broken.position == 12
    assert "not in today's chain" in result.broken.why


def test_a_published_head_found_in_todays_chain_is_a_proven_prefix() -> None:
    events = history(8)
    stored = chained(events)
    result = walk(events, stored, against=Head(7, stored[3].hash))
    assert (result.broken, result.against_found, result.checked) == (None, True, 8)


def test_a_head_reads_back_from_its_printed_form() -> None:
    head = Head(42, bytes(range(32)))
    assert Head.parse(str(head)) == head


@pytest.mark.parametrize("text", ["42", "x:00", "0:" + "00" * 32, "5:" + "00" * 31, "5:zz"])
def test_a_malformed_head_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="POSITION:HASH"):
        Head.parse(text)


def replace_state(event: ChainedEvent, state: bytes) -> ChainedEvent:
    return event._replace(state=state)


events_strategy = st.lists(
    st.tuples(st.binary(max_size=40), st.sampled_from(["t1", "t2"])), min_size=1, max_size=20
).map(
    lambda items: [
        ChainedEvent(3 * i + 1, A, i + 1, topic, state) for i, (state, topic) in enumerate(items)
    ]
)


@given(events_strategy, st.data())
def test_any_changed_byte_of_any_event_breaks_the_chain_exactly_there(
    events: list[ChainedEvent], data: st.DataObject
) -> None:
    stored = chained(events)
    assert walk(events, stored).head == Head(events[-1].notification_id, stored[-1].hash)
    index = data.draw(st.integers(0, len(events) - 1))
    target = events[index]
    forged = (
        target.state + b"!" if not target.state else bytes([target.state[0] ^ 1]) + target.state[1:]
    )
    tampered = [*events[:index], replace_state(target, forged), *events[index + 1 :]]
    result = walk(tampered, stored)
    assert result.broken is not None
    assert (result.broken.position, result.checked) == (target.notification_id, index)
