"""close-periods --dry-run, progress over many accounts, and the projections writer lock."""

from __future__ import annotations

import pytest

from commands.closing import close_periods
from commands.models import ClosePeriods
from projections.writer_lock import ProjectionsBusy, projections_writer
from tests.conftest import MakeServices
from tests.support import open_postpaid, utc


def test_a_dry_run_shows_the_documents_a_close_would_issue_and_stores_nothing(
    make_services: MakeServices,
) -> None:
    services = make_services()
    open_postpaid(services, 5)
    head = services.ledger.recorder.max_notification_id()
    progress: list[tuple[int, int]] = []

    # Chunks of 2 accounts: numbers continue across chunks although none is saved.
    preview = close_periods(
        services.ledger,
        ClosePeriods(as_of=utc(2026, 11, 1, 7)),
        chunk_size=2,
        dry_run=True,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert [(d.number, d.account_id, str(d.period)) for d in preview] == [
        (f"2026-{n + 1:06d}", f"acct-{n:03d}", "2026-10") for n in range(5)
    ]
    assert progress == [(2, 5), (4, 5), (5, 5)]
    assert services.ledger.recorder.max_notification_id() == head  # nothing stored
    assert services.ledger.get_sequence(2026) is None

    issued = services.close_periods(utc(2026, 11, 1, 7))
    assert [(d.number, d.account_id, d.total) for d in issued] == [
        (d.number, d.account_id, d.total) for d in preview
    ]


def test_one_session_at_a_time_writes_the_projections_of_a_schema(
    make_services: MakeServices,
) -> None:
    services = make_services()
    schema = services.settings.database_schema
    with projections_writer(services.database_url, schema):
        with pytest.raises(ProjectionsBusy), projections_writer(services.database_url, schema):
            pass
        # Another schema (another ledger in the same database) is not held back.
        with projections_writer(services.database_url, f"{schema}_other"):
            pass
    with projections_writer(services.database_url, schema):  # released with its session
        pass


def test_a_follower_counts_exactly_the_events_it_has_not_applied(
    make_services: MakeServices,
) -> None:
    services = make_services()
    open_postpaid(services, 3)  # each: Opened + MonthOpened = 6 events
    read_models = services.read_models()
    assert read_models.behind_by_name()["balances"] == 6
    read_models.catch_up()
    assert read_models.behind_by_name()["balances"] == 0
