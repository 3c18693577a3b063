"""Events dated beyond the ledger's clock plus ``LEDGER_MAX_FUTURE_SKEW`` are
dead-lettered; the rest of their batch keeps its own business time.

Real PostgreSQL and broker; the consumer's clock is injected (fixed), the skew
comes from the settings as ``ledger serve`` reads them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from commands.store import LedgerRecorder
from ledger.entrypoints.settings import Settings
from tests.conftest import MakeServices
from tests.support import Upstreams, utc

CLOCK = utc(2026, 12, 1, 12)


def test_a_far_future_email_is_dead_lettered_and_does_not_move_its_batch_in_time(
    make_services: MakeServices,
) -> None:
    services = make_services(topic_partitions=1, max_future_skew=timedelta(minutes=5))
    up = Upstreams(services)
    up.publish([up.opened("acme", utc(2026, 11, 1))])
    up.publish(
        [
            *up.emails("acme", 3, utc(2026, 11, 20)),
            up.email("acme", utc(2199, 1, 1)),  # the upstream clock gone wrong
            up.email("acme", CLOCK + timedelta(minutes=4)),  # within the skew: December
            up.email("acme", CLOCK + timedelta(minutes=6)),  # beyond it
        ]
    )
    consumer = services.consumer(clock=lambda: CLOCK)
    try:
        consumer.drain(timeout=60)
    finally:
        consumer.close()
    recorder = services.ledger.process_recorder
    assert isinstance(recorder, LedgerRecorder)
    reasons = [row["reason"] for row in reversed(recorder.dead_letters())]  # oldest first
    latest = "2026-12-01T12:05:00+00:00"
    assert reasons == [
        f"time 2199-01-01T00:00:00+00:00 is in the future: the latest accepted now is {latest}"
        " (the ledger's clock plus LEDGER_MAX_FUTURE_SKEW)",
        f"time 2026-12-01T12:06:00+00:00 is in the future: the latest accepted now is {latest}"
        " (the ledger's clock plus LEDGER_MAX_FUTURE_SKEW)",
    ]
    account = services.ledger.get_account("acme")
    assert account.months["2026-11"].platform == 3  # type: ignore[union-attr]
    assert account.months["2026-12"].platform == 1  # type: ignore[union-attr]
    assert "2199-01" not in account.months  # type: ignore[union-attr]
    recorded = [e for e in services.ledger.history("acme") if type(e).__name__ == "EmailsRecorded"]
    # One event per month of the batch, each dated by its latest accepted email, not by 2199.
    assert [e.effective_at for e in recorded] == [  # type: ignore[attr-defined]
        utc(2026, 11, 20),
        CLOCK + timedelta(minutes=4),
    ]
    up.close()


def test_the_future_skew_is_an_iso_8601_duration_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().max_future_skew == timedelta(minutes=5)
    monkeypatch.setenv("LEDGER_MAX_FUTURE_SKEW", "PT90S")
    assert Settings().max_future_skew == timedelta(seconds=90)
    monkeypatch.setenv("LEDGER_MAX_FUTURE_SKEW", "-PT1M")
    with pytest.raises(ValidationError, match="max_future_skew"):
        Settings()
