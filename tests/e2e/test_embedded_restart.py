"""``ledger serve`` on its embedded (in-memory) broker, stopped and started again.

Each start is a new, empty log under the same topic names, so offsets begin
at 0 again. Before, the stored positions (20) lay beyond the new log's end
and the 5 emails published after the restart were never billed, with a lag
of 0. Now every partition's position is kept per log: the new log is read
from its start (recorded in the history), the re-published facts are refused
by their dedupe keys, and a clean stop counts what the broker still held.

By hand: 20 emails before the restart, 5 new ones and 3 of the first 20
re-published after it: 25 platform emails in November, each billed once.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from consumers.upstream_publisher import Outgoing
from ledger.entrypoints.bootstrap import bootstrap
from ledger.errors import AccountNotFound
from ledger.input_logs import partition_log_uuid
from tests.conftest import MakeServices
from tests.support import Upstreams, catch_up, json_lines, ledger_env, utc, wait_for

ADDRESS = re.compile(r"embedded in-memory broker at (\S+)")


def _start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    ledger = Path(sys.executable).with_name("ledger")
    offset = len(json_lines(log)) if log.exists() else 0
    service = subprocess.Popen(
        [str(ledger), "serve", "--role", "consumer"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )

    def address() -> str | None:
        assert service.poll() is None, log.read_text()[-3000:]
        for line in json_lines(log)[offset:]:
            match = ADDRESS.search(str(line.get("message", "")))
            if match:
                return match.group(1)
        return None

    return service, wait_for(address, what="the embedded broker's address")


def _stop(service: subprocess.Popen[bytes]) -> None:
    service.send_signal(signal.SIGTERM)
    assert service.wait(timeout=60) == 0


def test_a_restarted_embedded_broker_loses_nothing_published_after_it_and_bills_nothing_twice(
    make_services: MakeServices, tmp_path: Path
) -> None:
    services = make_services()
    settings = services.settings
    env = ledger_env(settings)
    del env["LEDGER_KAFKA_BOOTSTRAP"]  # serve starts its own, in-memory broker
    env["LEDGER_HOME"] = str(tmp_path / "home")
    env["LEDGER_TOPIC_PARTITIONS"] = "2"
    log = tmp_path / "serve.log"
    reader = bootstrap(settings.model_copy(update={"kafka_bootstrap": None}), need_kafka=False)

    def platform_emails() -> int:
        catch_up(reader)
        try:
            rows = reader.reports().usage("acme", "2026-11")
        except AccountNotFound:  # not opened yet
            return 0
        return int(rows[0]["platform_emails"]) if rows else 0

    service, address = _start(env, log)
    up = Upstreams(services)  # one MTA throughout: its event ids go on counting
    up.kafka.close()
    up.kafka = _producer(address)
    emails = up.emails("acme", 20, utc(2026, 11, 2))
    up.publish([up.opened("acme", utc(2026, 11, 1)), *emails])
    wait_for(lambda: platform_emails() == 20, timeout=60, what="the first 20 emails billed")
    _stop(service)
    closed = [
        line for line in json_lines(log) if line.get("event") == "embedded_broker_logs_closed"
    ]
    assert closed[-1]["unconsumed"] == 0

    service, address = _start(env, log)
    try:
        up.kafka.close()
        up.kafka = _producer(address)
        republished: list[Outgoing] = emails[:3]
        up.publish([*up.emails("acme", 5, utc(2026, 11, 3)), *republished])
        wait_for(lambda: platform_emails() == 25, timeout=60, what="the 5 new emails billed")
        up.close()
    finally:
        _stop(service)
    assert platform_emails() == 25  # the 3 re-published ones were refused
    replaced = [
        event
        for partition in range(2)
        for event in reader.ledger.events.get(
            partition_log_uuid(settings.topic_email_sent, partition)
        )
        if type(event).__name__ == "Replaced"
    ]
    assert len(replaced) == 2  # each email partition: a new log, read from its start
    assert {e.previous_unconsumed for e in replaced} == {0}  # type: ignore[attr-defined]
    assert sum((e.previous_position or -1) + 1 for e in replaced) == 20  # type: ignore[attr-defined]
    reader.close()


def _producer(address: str) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=[address], acks="all", linger_ms=5)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a reaped-late dead process is not running)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_a_killed_owner_leaves_no_embedded_broker_accepting_writes() -> None:
    """Its log dies with it anyway; an orphan would take records nobody reads."""
    code = (
        "from ledger.entrypoints.embedded import start_broker; import time;"
        " print(start_broker().process.pid, flush=True); time.sleep(120)"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    broker = int(owner.stdout.readline())
    assert _running(broker)
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=10)
    wait_for(lambda: not _running(broker), timeout=10, what="the orphaned broker to die")
