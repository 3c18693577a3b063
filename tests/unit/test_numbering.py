from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger.numbering import DocumentNumberSequence, format_number, sequence_uuid


def test_allocate_hands_out_consecutive_numbers_from_one() -> None:
    sequence = DocumentNumberSequence(2026)
    assert sequence.allocate(3) == ["2026-000001", "2026-000002", "2026-000003"]
    assert sequence.allocate(1) == ["2026-000004"]
    assert sequence.last == 4


def test_each_allocation_is_one_recorded_range() -> None:
    sequence = DocumentNumberSequence(2026)
    sequence.collect_events()
    sequence.allocate(3)
    sequence.allocate(1)
    events = sequence.collect_events()
    assert [type(e).__name__ for e in events] == ["Allocated", "Allocated"]
    assert [(e.first, e.last) for e in events] == [(1, 3), (4, 4)]  # type: ignore[attr-defined]


def test_allocating_nothing_records_nothing() -> None:
    sequence = DocumentNumberSequence(2026)
    sequence.collect_events()
    assert sequence.allocate(0) == []
    assert sequence.allocate(-2) == []
    assert sequence.collect_events() == []
    assert sequence.allocate(1) == ["2026-000001"]


def test_one_sequence_per_year() -> None:
    assert DocumentNumberSequence(2026).id == sequence_uuid(2026)
    assert DocumentNumberSequence(2026).id == DocumentNumberSequence(2026).id
    assert sequence_uuid(2026) != sequence_uuid(2027)
    assert DocumentNumberSequence(2027).allocate(1) == ["2027-000001"]


def test_number_format_is_year_dash_six_digits() -> None:
    assert format_number(2026, 1) == "2026-000001"
    assert format_number(2026, 123456) == "2026-123456"
    assert format_number(2026, 1234567) == "2026-1234567"  # grows rather than wraps


@given(st.lists(st.integers(0, 50), max_size=20))
def test_numbers_are_gapless_and_unique_whatever_the_allocation_sizes(sizes: list[int]) -> None:
    sequence = DocumentNumberSequence(2026)
    handed_out = [number for size in sizes for number in sequence.allocate(size)]
    assert handed_out == [f"2026-{n:06d}" for n in range(1, sum(sizes) + 1)]
