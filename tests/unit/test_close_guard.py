"""A close a person asks for never documents a month that is still running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commands.closing import check_close
from commands.models import ClosePeriods
from ledger.errors import CloseTimeInFuture, LedgerError, NegativeGrace

NOW = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)


def test_a_close_as_of_now_or_within_the_skew_is_allowed() -> None:
    check_close(ClosePeriods(as_of=NOW), NOW, SKEW)
    check_close(ClosePeriods(as_of=NOW + SKEW), NOW, SKEW)
    check_close(
        ClosePeriods(as_of=datetime(2026, 11, 1, tzinfo=UTC), grace=timedelta(0)), NOW, SKEW
    )


def test_a_close_later_than_the_clock_plus_skew_is_refused() -> None:
    with pytest.raises(CloseTimeInFuture) as refused:
        check_close(ClosePeriods(as_of=NOW + SKEW + timedelta(seconds=1)), NOW, SKEW)
    assert isinstance(refused.value, LedgerError)
    assert str(refused.value) == (
        "cannot close periods as of 2026-12-01T19:05:01+00:00: that is later than the clock"
        " allows (2026-12-01T19:05:00+00:00, LEDGER_MAX_FUTURE_SKEW included)"
    )
    with pytest.raises(CloseTimeInFuture):
        check_close(ClosePeriods(as_of=datetime(2099, 1, 1, tzinfo=UTC)), NOW, SKEW)


def test_a_negative_grace_is_refused() -> None:
    with pytest.raises(NegativeGrace) as refused:
        check_close(ClosePeriods(as_of=NOW, grace=-timedelta(hours=6)), NOW, SKEW)
    assert str(refused.value) == "the close grace must not be negative: -6:00:00"
