"""CLI start-up benchmark: wall time of ``ledger --help`` and ``ledger balance ACCOUNT``
against ``python -c pass`` in the same run.

    python bench/cli_startup.py [--runs 15] [--accounts 100]

A short command's time is almost all start-up (imports), which the shared host's
load moves from run to run: each figure is the median of ``--runs`` runs, and the
three commands are run in turn, so a slow spell costs each of them alike. The
books (accounts opened, some emails billed) go through the consumer and the read
models first, on embedded PostgreSQL and Tansu. Last line:
``help=<s> balance=<s> python=<s>``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import host_speed, publish_all, start

from consumers.upstream_publisher import Outgoing, Upstream
from ledger.entrypoints.bootstrap import bootstrap
from ledger.entrypoints.logs import configure
from ledger.entrypoints.settings import Settings

LEDGER = Path(sys.executable).with_name("ledger")


def books(accounts: int) -> list[Outgoing]:
    panel, mta = Upstream("urn:bench:panel"), Upstream("urn:bench:mta")
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    opened = [
        panel.event(
            "billing.accounts",
            "account.opened",
            t0,
            {
                "account_id": f"acct-{i:04d}",
                "plan": "email-starter",
                "payment_mode": "postpaid",
                "currency": "EUR",
            },
        )
        for i in range(accounts)
    ]
    emails = [
        mta.event(
            "billing.email-sent",
            "email.sent",
            t0 + timedelta(minutes=i),
            {
                "account_id": f"acct-{i % accounts:04d}",
                "message_id": f"<{i}@bench>",
                "route": "platform",
            },
        )
        for i in range(accounts * 20)
    ]
    return opened + emails


def fill(settings: Settings, accounts: int) -> None:
    """Bill the books and bring the read models up to date, as ``serve`` would."""
    services = bootstrap(settings)
    try:
        consumer = services.consumer()
        consumer.drain(timeout=300)
        consumer.close()
        for follower in services.followers():
            follower.catch_up()
    finally:
        services.close()


def wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--accounts", type=int, default=100)
    args = parser.parse_args()
    configure(json_lines=False, level=logging.WARNING)  # the consumer's batch lines are noise here
    services = start()
    try:
        publish_all(services, books(args.accounts))
        fill(services.settings, args.accounts)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        env["LEDGER_DATABASE_URL"] = services.postgres.url
        commands = {
            "python": [sys.executable, "-c", "pass"],
            "help": [str(LEDGER), "--help"],
            "balance": [str(LEDGER), "balance", "acct-0000"],
        }
        print(f"host speed: {host_speed():.2f}s for 10M empty Python loop iterations")
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(wall(command, env))
        median = {name: statistics.median(runs) for name, runs in times.items()}
        for name, runs in times.items():
            ratio = median[name] / median["python"]
            print(
                f"{name:>8}: median {median[name]:.3f}s (min {min(runs):.3f}s,"
                f" max {max(runs):.3f}s) over {len(runs)} runs, {ratio:.1f}x python -c pass"
            )
    finally:
        services.stop()
    figures = " ".join(f"{name}={median[name]:.3f}" for name in ("help", "balance", "python"))
    print(figures)


if __name__ == "__main__":
    main()
