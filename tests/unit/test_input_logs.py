"""A partition's positions are kept per log; the history says every change of log."""

from __future__ import annotations

import pytest

from ledger.input_logs import PartitionLog, PositionNotResettable, classify, tracking_name
from tests.support import utc


def _log() -> PartitionLog:
    return PartitionLog.adopt(
        topic="billing.email-sent", partition=2, log_id="A", start_offset=0, at=utc(2026, 12, 1)
    )


def test_next_offset_is_the_start_until_something_is_stored_then_the_one_after() -> None:
    log = _log()
    assert log.next_offset(None) == 0
    assert log.next_offset(41) == 42


@pytest.mark.parametrize(
    ("next_offset", "start", "end", "status"),
    [
        (0, 0, 0, "ok"),  # an empty log, nothing read
        (5, 0, 5, "ok"),  # caught up
        (3, 0, 5, "ok"),
        (2, 3, 5, "before_start"),  # offsets 2 deleted before they were read
        (6, 0, 5, "beyond_end"),  # the position was not taken in this log
        (21, 0, 5, "beyond_end"),  # the restarted embedded broker: 20 read before, 5 now
    ],
)
def test_a_position_is_classified_against_its_log(
    next_offset: int, start: int, end: int, status: str
) -> None:
    assert classify(next_offset, start, end) == status


def test_each_log_and_each_reset_has_its_own_tracking_name() -> None:
    names = {
        tracking_name("t", 0, "A", 0),
        tracking_name("t", 0, "A", 1),
        tracking_name("t", 0, "B", 0),
        tracking_name("t", 1, "A", 0),
    }
    assert len(names) == 4
    assert tracking_name("t", 0, "A", 0) == "kafka:t:0@A"
    assert tracking_name("t", 0, "A", 2) == "kafka:t:0@A+2"


def test_a_new_log_is_read_from_its_start_and_the_old_logs_leftover_is_recorded() -> None:
    log = _log()
    log.close(stored=19, log_end=23, at=utc(2026, 12, 1, 1))
    assert log.unconsumed_at_close == 3  # offsets 20, 21 and 22 were not read
    log.replace(log_id="B", start_offset=0, stored=19, at=utc(2026, 12, 1, 2))
    assert (log.log_id, log.epoch, log.next_offset(None)) == ("B", 1, 0)
    assert log.tracking_name == "kafka:billing.email-sent:2@B+1"
    replaced = log.collect_events()[-1]
    assert type(replaced).__name__ == "Replaced"
    assert replaced.previous_position == 19  # type: ignore[attr-defined]
    assert replaced.previous_unconsumed == 3  # type: ignore[attr-defined]


def test_a_log_that_vanished_without_being_closed_leaves_its_leftover_unknown() -> None:
    log = _log()
    log.replace(log_id="B", start_offset=0, stored=19, at=utc(2026, 12, 1, 2))
    replaced = log.collect_events()[-1]
    assert replaced.previous_unconsumed is None  # type: ignore[attr-defined]


def test_a_reset_starts_a_new_epoch_at_the_chosen_offset_with_its_reason() -> None:
    log = _log()
    log.reset(
        to_offset=3, stored=500, log_start=0, log_end=7, reason=" recreated ", at=utc(2026, 12, 2)
    )
    assert (log.epoch, log.next_offset(None), log.tracking_name) == (
        1,
        3,
        "kafka:billing.email-sent:2@A+1",
    )
    reset = log.collect_events()[-1]
    assert (reset.reason, reset.previous_position) == ("recreated", 500)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("offset", "reason"), [(8, "why"), (-1, "why"), (3, "  ")])
def test_a_reset_outside_the_log_or_without_a_reason_is_refused_and_changes_nothing(
    offset: int, reason: str
) -> None:
    log = _log()
    version = log.version
    with pytest.raises(PositionNotResettable):
        log.reset(
            to_offset=offset, stored=500, log_start=0, log_end=7, reason=reason, at=utc(2026, 12, 2)
        )
    assert (log.version, log.epoch, log.start_offset) == (version, 0, 0)


def test_replacing_a_log_by_itself_is_refused() -> None:
    log = _log()
    with pytest.raises(PositionNotResettable):
        log.replace(log_id="A", start_offset=0, stored=3, at=utc(2026, 12, 2))


def test_a_log_met_again_never_reuses_a_tracking_name() -> None:
    """A -> B -> A (a broker that briefly answered with another log): the second
    reading of A starts afresh instead of reviving A's old position."""
    log = _log()
    names = [log.tracking_name]
    for log_id in ("B", "A"):
        log.replace(log_id=log_id, start_offset=0, stored=None, at=utc(2026, 12, 1, 2))
        names.append(log.tracking_name)
    assert names == [
        "kafka:billing.email-sent:2@A",
        "kafka:billing.email-sent:2@B+1",
        "kafka:billing.email-sent:2@A+2",
    ]


def test_a_hold_lasts_until_a_reset_or_a_new_log() -> None:
    log = _log()
    log.hold(status="beyond_end", stored=500, log_start=0, log_end=14, at=utc(2026, 12, 2))
    log.hold(status="beyond_end", stored=500, log_start=0, log_end=600, at=utc(2026, 12, 2, 1))
    assert log.held == "beyond_end"
    assert [type(e).__name__ for e in log.collect_events()] == ["Adopted", "Held"]  # once
    log.reset(to_offset=14, stored=500, log_start=0, log_end=600, reason="r", at=utc(2026, 12, 3))
    assert log.held is None
    log.hold(status="before_start", stored=3, log_start=9, log_end=600, at=utc(2026, 12, 4))
    log.replace(log_id="B", start_offset=0, stored=3, at=utc(2026, 12, 5))
    assert log.held is None
    with pytest.raises(PositionNotResettable):
        log.hold(status="ok", stored=3, log_start=0, log_end=9, at=utc(2026, 12, 6))
