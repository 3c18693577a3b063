"""serve.json: the endpoints of a running serve, never a password."""

from __future__ import annotations

import os
from pathlib import Path

from ledger.entrypoints import status_file
from ledger.entrypoints.status_file import ServeStatus, without_password


def test_passwords_are_removed_from_every_form_of_database_url() -> None:
    assert without_password("postgresql://ledger:s3cret@db:5432/ledger") == (
        "postgresql://ledger@db:5432/ledger"
    )
    assert without_password("postgresql://ledger@db/ledger?password=s3cret&sslmode=require") == (
        "postgresql://ledger@db/ledger?sslmode=require"
    )
    assert without_password("postgresql://postgres:@/postgres?host=/tmp/x/pg") == (
        "postgresql://postgres@/postgres?host=/tmp/x/pg"
    )
    conninfo = without_password("host=db user=ledger password=s3cret dbname=ledger")
    assert sorted(conninfo.split()) == ["dbname=ledger", "host=db", "user=ledger"]


def _status(pid: int) -> ServeStatus:
    return ServeStatus(
        pid=pid,
        started_at="2026-12-01T19:00:00+00:00",
        roles=["consumer", "projections"],
        database_url="postgresql://ledger@db/ledger",
        database_schema="public",
        embedded_database=False,
        kafka_bootstrap="127.0.0.1:9092",
        embedded_kafka=True,
        metrics="127.0.0.1:9100",
    )


def test_the_status_file_round_trips_and_only_its_writer_removes_it(tmp_path: Path) -> None:
    mine = _status(os.getpid())
    status_file.write(tmp_path, mine)
    assert status_file.read(tmp_path) == mine
    assert status_file.alive(mine)
    status_file.remove(tmp_path, os.getpid() + 1)  # another process: not its file
    assert status_file.read(tmp_path) == mine
    status_file.remove(tmp_path, os.getpid())
    assert status_file.read(tmp_path) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == []
