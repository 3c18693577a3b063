"""Library log records come out in the service's format: serve's stderr is JSON lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from ledger.entrypoints.logs import configure


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    kafka_level = logging.getLogger("kafka").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("kafka").setLevel(kafka_level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


def test_standard_library_records_are_json_lines_and_kafka_info_is_dropped(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(json_lines=True)
    logging.getLogger("kafka.conn").info("connecting to 127.0.0.1:9092")
    logging.getLogger("kafka.coordinator").warning("heartbeat failed: %s", "rebalancing")
    logging.getLogger("eventsourcing").error("pool exhausted")
    structlog.get_logger("ledger.entrypoints.cli").info("serving", roles=["consumer"])
    lines = capsys.readouterr().err.splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["event"], r["level"]) for r in records] == [
        ("heartbeat failed: rebalancing", "warning"),
        ("pool exhausted", "error"),
        ("serving", "info"),
    ]
    assert records[0]["logger"] == "kafka.coordinator"
