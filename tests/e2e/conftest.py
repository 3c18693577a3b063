"""What the CLI tests read: one account's books, billed through the broker and closed."""

from __future__ import annotations

import pytest

from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, ledger_env, utc


@pytest.fixture
def books(make_services: MakeServices) -> dict[str, str]:
    services = make_services()
    up = Upstreams(services)
    up.publish(
        [
            up.opened("acme", utc(2026, 10, 2), payment_mode="prepaid", tax_rate="0.21"),
            up.credit("acme", "25.00", utc(2026, 10, 2, 1)),
            *up.emails("acme", 1500, utc(2026, 10, 15)),
        ]
    )
    consumer = services.consumer()
    consumer.drain(timeout=60)
    consumer.close()
    up.close()
    services.close_periods(utc(2026, 11, 1, 7))
    catch_up(services)
    return ledger_env(services.settings)
