"""The seeded fault suite (issue point 7): a generated stream through real
``ledger serve`` processes while a seeded schedule SIGKILLs consumers, consumer
supervisors, the projections and the outbox publisher, stops and starts
PostgreSQL and the (memory-only) broker, and a consumer joins and leaves. At
the end every figure equals the oracle's (tests/chaos/oracle.py).

``LEDGER_CHAOS_SEED`` picks the seed (default 7); the schedule is derived only
from the seed and the stream, so a failing seed replays the same run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.run import Sizes, run

SEED = int(os.environ.get("LEDGER_CHAOS_SEED", "7"))


def _check(sizes: Sizes, tmp_path: Path) -> None:
    summary = run(SEED, sizes, tmp_path)
    print(summary.line())
    for line in summary.discrepancies:
        print("discrepancy:", line)
    assert summary.kills >= sizes.kills, summary.line()
    assert (summary.pg_restarts, summary.broker_restarts, summary.rebalances) == (1, 1, 2)
    assert summary.discrepancies == [], f"seed {SEED}: {summary.line()}"
    assert (summary.lost, summary.billed_twice) == (0, 0), summary.line()


@pytest.mark.timeout(240)
def test_a_short_seeded_fault_run_bills_every_fact_once(tmp_path: Path) -> None:
    _check(Sizes(facts=3000, accounts=12, kills=4, rate=250, timeout=90, heavy=0.5), tmp_path)


@pytest.mark.chaos
@pytest.mark.timeout(1200)
def test_the_full_seeded_fault_run_bills_every_fact_once(tmp_path: Path) -> None:
    _check(Sizes(facts=100_000, accounts=50, kills=22, rate=1500, timeout=600), tmp_path)
