"""CLI start-up benchmark: wall time of ``ledger --help`` and ``ledger balance ACCOUNT``
against ``python -c pass`` in the same run.

    python bench/cli_startup.py [--runs 15] [--accounts 100]

A short command's time is almost all start-up (imports), which the shared host's
load moves from run to run: each figure is the median of ``--runs`` runs, and the
three commands are run in turn, so a slow spell costs each of them alike. The
books (the ingest benchmark's accounts, 20 emails each) go through the consumer
and the read models first, on embedded PostgreSQL and Tansu. Last line:
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
from pathlib import Path

from harness import host_speed, publish_all, start
from ingest import messages

from ledger.entrypoints.bootstrap import bootstrap
from ledger.entrypoints.logs import configure
from ledger.entrypoints.settings import Settings

LEDGER = Path(sys.executable).with_name("ledger")


def fill(settings: Settings) -> None:
    """Bill the books and bring the read models up to date, as ``serve`` would."""
    services = bootstrap(settings)
    try:
        consumer = services.consumer()
        consumer.drain(timeout=300)
        consumer.close()
        services.read_models().catch_up()
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
        opened, emails = messages(args.accounts * 20, args.accounts)
        publish_all(services, opened + emails)
        fill(services.settings)
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
