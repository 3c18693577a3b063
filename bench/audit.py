"""Audit benchmark: ``ledger audit verify`` and ``ledger audit chain`` over a history.

    python bench/audit.py [--emails 1000000] [--accounts 1000]

The history is bench/rebuild.py's (written through the command handlers: a
month of emails in batches, a plan change, the month's close, late emails),
with read models caught up. Then, in this process, the verify (replay into
scratch read models and the comparison of every table) and the chain's walk
(every event read and its link recomputed), each timed alone; then both
commands as a user runs them (process start included). Targets (issue 12):
>= 20k stored events/s for verify, >= 100k links/s for the chain. Last line:
``verify_events_per_s=<n> chain_links_per_s=<n>``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import host_speed, time_ledger_command
from rebuild import build

from ledger.entrypoints.bootstrap import bootstrap
from ledger.entrypoints.embedded import start_postgres
from ledger.entrypoints.settings import Settings
from projections.verify import scratch, scratch_schema, verify


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emails", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=40, help="emails per account per batch")
    args = parser.parse_args()
    datadir = Path(tempfile.mkdtemp(prefix="ledger-audit-"))
    postgres = start_postgres(datadir / "pg", persistent=False)
    try:
        svc = bootstrap(Settings(database_url=postgres.url, home=datadir), need_kafka=False)
        started = time.perf_counter()
        emails = build(svc, args.emails, args.accounts, args.batch)
        svc.read_models(sole_work=True).catch_up()
        stored = svc.ledger.recorder.max_notification_id() or 0
        print(
            f"history: {emails:,} emails over {args.accounts:,} accounts, {stored:,} stored"
            f" events, written in {time.perf_counter() - started:.1f}s"
        )
        print(f"host speed: {host_speed():.2f}s for 10M empty Python loop iterations")

        started = time.perf_counter()
        schema = scratch_schema()
        with scratch(svc.database_url, schema):
            replay, close = svc.replayed_read_models(schema)
            try:
                live = svc.read_models().projections
                found = verify(svc.database_url, svc.ledger.name, live, replay)
            finally:
                close()
        verify_seconds = time.perf_counter() - started
        if found.differences:
            raise RuntimeError(f"verify found differences: {found.differences[:3]}")
        verify_rate = found.replayed_events / verify_seconds
        print(
            f"verify: {found.replayed_events:,} events replayed and {found.tables} tables"
            f" compared in {verify_seconds:.2f}s: {verify_rate:,.0f} events/s (replay"
            f" {found.replay_seconds:.2f}s, comparison {found.compare_seconds:.2f}s)"
        )

        started = time.perf_counter()
        walked = svc.ledger.recorder.walk_chain()  # type: ignore[attr-defined]
        chain_seconds = time.perf_counter() - started
        if walked.broken is not None:
            raise RuntimeError(f"chain broken: {walked.broken}")
        chain_rate = walked.checked / chain_seconds
        print(f"chain: {walked.checked:,} links in {chain_seconds:.2f}s: {chain_rate:,.0f} links/s")
        svc.close()

        for command in (["audit", "verify"], ["audit", "chain"]):
            time_ledger_command(postgres.url, datadir, *command)
        print(f"verify_events_per_s={verify_rate:.0f} chain_links_per_s={chain_rate:.0f}")
    finally:
        postgres.stop()
        shutil.rmtree(datadir, ignore_errors=True)


if __name__ == "__main__":
    main()
