"""Scale-out: ``ledger serve --role consumer --consumers 2`` runs two consumer
processes in one group; each bills its own partitions, exactly once.

16 postpaid accounts on email-starter spread over the 4 partitions, 1,500
emails each (24,000) plus 400 re-publications. Both processes are in the
group before the emails are published, so both must bill some. Then one
process is SIGKILLed mid-way: the supervisor must stop the other and exit
non-zero (restart, don't limp); a restarted service finishes the rest.

Expected per account, by hand: 1,500 platform emails, 1,000 included, 500
charged at 0.0010 = 0.50; balance = -(fee 10.00 + 0.50) = -10.50.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kafka.partitioner.default import murmur2

from tests.conftest import MakeServices
from tests.e2e.test_crash_safety import _applied
from tests.support import (
    Upstreams,
    assert_each_billed,
    ledger_env,
    positions_at_end,
    utc,
    wait_for,
)

ACCOUNTS = 16
PER_ACCOUNT = 1500
PARTITIONS = 4


def _log_lines(log: Path) -> Iterator[dict[str, Any]]:
    """The JSON lines written so far (a line still being written is skipped)."""
    for line in log.read_text().splitlines(keepends=True):
        if line.startswith("{") and line.endswith("\n"):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def _final_assignments(log: Path, topic: str) -> dict[int, set[int]]:
    """Each process's partitions of ``topic`` as of the last rebalance that gave it some
    (the revocations of the shutdown are not a rebalance)."""
    generations: dict[int, list[set[int]]] = {}
    for line in _log_lines(log):
        process = line.get("consumer_process")
        if line.get("event") == "partitions_revoked" and process is not None:
            generations.setdefault(process, []).append(set())
        elif line.get("event") == "partition_assigned" and line.get("topic") == topic:
            generations[process][-1].add(line["partition"])
    return {p: next((g for g in reversed(gs) if g), set()) for p, gs in generations.items()}


def _events(log: Path, event: str) -> list[dict[str, Any]]:
    return [line for line in _log_lines(log) if line.get("event") == event]


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    ledger = Path(sys.executable).with_name("ledger")
    return subprocess.Popen(
        [str(ledger), "serve", "--role", "consumer", "--consumers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


def _both_assigned(service: subprocess.Popen[bytes], log: Path) -> bool:
    """Both processes were given partitions (the second one's joining made the group
    rebalance, so from then on each holds its share)."""
    assert service.poll() is None, log.read_text()[-3000:]
    return {line.get("consumer_process") for line in _events(log, "partition_assigned")} >= {0, 1}


def _shared(service: subprocess.Popen[bytes], log: Path, topic: str) -> bool:
    assert service.poll() is None, log.read_text()[-3000:]
    held = _final_assignments(log, topic)
    return (
        set(held) == {0, 1}
        and all(held.values())
        and held[0].isdisjoint(held[1])
        and held[0] | held[1] == set(range(PARTITIONS))
    )


def test_two_consumer_processes_share_the_partitions_and_bill_exactly_once(
    make_services: MakeServices, tmp_path: Path
) -> None:
    services = make_services(topic_partitions=PARTITIONS)
    settings = services.settings
    up = Upstreams(services)
    accounts = [f"acct-{i:02d}" for i in range(ACCOUNTS)]
    # kafka-python's default partitioner: the accounts must cover every partition.
    partitions = {(murmur2(a.encode()) & 0x7FFFFFFF) % PARTITIONS for a in accounts}
    assert partitions == set(range(PARTITIONS))
    up.publish([up.opened(a, utc(2026, 11, 1)) for a in accounts])
    env = ledger_env(settings)
    env["LEDGER_BATCH_MAX_RECORDS"] = "1000"
    log = tmp_path / "consumers.log"
    topics = [settings.topic_accounts, settings.topic_email_sent]

    service = _start(env, log)
    try:
        wait_for(lambda: _both_assigned(service, log), timeout=120, what="both processes assigned")
        emails = [
            up.email(a, utc(2026, 11, 2 + n % 20, 8)) for n in range(PER_ACCOUNT) for a in accounts
        ]
        up.publish(emails[:12_000])
        wait_for(lambda: _applied(settings) >= 4_000, timeout=120, what="4,000 applied")
        started = _events(log, "consumer_processes_started")[-1]
        os.kill(started["pids"][0], signal.SIGKILL)
        # The supervisor notices, stops the other process, and exits non-zero.
        assert service.wait(timeout=90) == 1, log.read_text()[-3000:]
    finally:
        if service.poll() is None:
            service.kill()

    up.publish(emails[12_000:] + emails[3_000:3_400])  # the rest, and 400 re-publications
    first_log, log = log, tmp_path / "restarted.log"
    service = _start(env, log)
    try:
        total = ACCOUNTS + ACCOUNTS * PER_ACCOUNT
        wait_for(lambda: _applied(settings) >= total, timeout=120, what="all applied")
        wait_for(lambda: positions_at_end(services, topics), timeout=60, what="positions at end")
        # One group: the processes come to hold disjoint shares that cover every
        # partition (two groups would each hold all of them).
        wait_for(
            lambda: _shared(service, log, settings.topic_email_sent),
            timeout=120,
            what="disjoint shares of the partitions",
        )
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if service.poll() is None:
            service.kill()

    committed = _events(first_log, "batch_committed") + _events(log, "batch_committed")
    billed_by = {
        line["consumer_process"]
        for line in committed
        if line["topic"] == settings.topic_email_sent and line["applied"] > 0
    }
    assert billed_by == {0, 1}
    # One dedupe key per message applied: 16 openings and 24,000 emails, no more.
    assert _applied(settings) == ACCOUNTS + ACCOUNTS * PER_ACCOUNT
    up.close()
    assert_each_billed(
        services,
        accounts,
        "2026-11",
        emails=1500,
        included=1000,
        charged=500,
        amount="0.50",
        balance="-10.50",
    )
