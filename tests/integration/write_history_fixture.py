"""Writes ``fixtures/history_v1.json``: a history stored by the ledger as it was before
``EmailsRecorded`` became version 2, with the read models and the accounts it made.

Run once, at the commit named in the fixture, by naming this file (pytest collects
it only then): ``pytest tests/integration/write_history_fixture.py``. The fixture
is test data for :mod:`tests.integration.test_stored_history`; rewriting it with
later code would test nothing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from consumers.upstream_publisher import Upstream
from ledger.entrypoints.bootstrap import Services
from tests.conftest import MakeServices
from tests.integration.test_projections import _history, _snapshot, _stored
from tests.support import Upstreams, catch_up, drain, utc

FIXTURE = Path(__file__).parent / "fixtures" / "history_v1.json"


def _more(services: Services) -> None:
    """What ``_history`` leaves out: blocking, a plan change inside one batch's
    emails, a closed account's usage after its last paid month, and a second close."""
    up = Upstreams(services)
    # Sources of their own: a CloudEvent is known by its source and id, and the ids
    # of _history's upstreams start at the same numbers.
    up.mta, up.panel = Upstream("urn:test:mta-2"), Upstream("urn:test:panel-2")

    def closed(account: str, at: Any) -> Any:
        return up.panel.event(
            services.settings.topic_accounts, "account.closed", at, {"account_id": account}
        )

    up.publish(
        [
            # 0.05 does not cover the 10.00 fee: blocked, then unblocked by 20.00.
            up.opened("d", utc(2026, 11, 4), payment_mode="prepaid"),
            up.credit("d", "0.05", utc(2026, 11, 4, 1)),
            up.opened("e", utc(2026, 11, 6)),
            up.opened("f", utc(2026, 11, 1), plan="email-starter"),
            closed("e", utc(2026, 11, 8)),
        ]
    )
    drain(services)
    up.publish(
        [
            up.credit("d", "20.00", utc(2026, 11, 5)),
            *up.emails("d", 1500, utc(2026, 11, 6)),
            *up.emails("e", 900, utc(2026, 11, 7)),
            up.plan_changed("f", "email-volume", utc(2026, 11, 15)),
        ]
    )
    drain(services)
    # One batch across f's plan change: runs of the first plan, the second, the first.
    up.publish(
        [
            *up.emails("f", 5, utc(2026, 11, 10)),
            *up.emails("f", 5, utc(2026, 11, 20)),
            *up.emails("f", 3, utc(2026, 11, 12)),
            # After e's last paid month: no fee, nothing included.
            *up.emails("e", 15, utc(2026, 12, 1, 10)),
            *up.emails("e", 2, utc(2026, 12, 1, 11), route="custom_smtp"),
        ]
    )
    drain(services)
    services.close_periods(utc(2026, 12, 2, 3))
    services.close_periods(utc(2027, 1, 2, 7))
    up.close()


def test_write_the_fixture(make_services: MakeServices) -> None:
    services = make_services()
    _history(services)
    _more(services)
    catch_up(services)
    transcoder = services.ledger.mapper.transcoder
    stored = _stored(services)
    accounts = sorted({n.originator_id for n in stored if ".account:" in n.topic})
    fixture = {
        "comment": "Stored by the ledger at the commit below, before EmailsRecorded v2.",
        "commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip(),
        "events": [
            {
                "originator_id": str(n.originator_id),
                "originator_version": n.originator_version,
                "topic": n.topic,
                "state": json.loads(n.state),
            }
            for n in stored
        ],
        "accounts": {
            str(uuid): json.loads(transcoder.encode(_state(services.ledger.repository.get(uuid))))
            for uuid in accounts
        },
        "tables": json.loads(json.dumps(_snapshot(services), default=str)),
    }
    FIXTURE.write_text(json.dumps(fixture, indent=1, sort_keys=True) + "\n")


def _state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}
