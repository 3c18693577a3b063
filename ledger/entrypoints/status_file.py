"""``$LEDGER_HOME/serve.json``: where a running ``ledger serve`` can be reached.

With embedded services the broker listens on a port chosen at start, and the
database on a socket under ``LEDGER_HOME``; only the process knows them. So
``serve`` writes them here when it starts and removes the file when it stops,
and ``ledger status`` reads it, so a user can publish to the printed broker.
Never a password: the database URL is written without one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ledger.entrypoints.embedded import pid_alive

FILE_NAME = "serve.json"


def without_password(database_url: str) -> str:
    """The URL (or ``key=value`` conninfo) with any password removed."""
    if "://" not in database_url:
        info = conninfo_to_dict(database_url)
        info.pop("password", None)
        return make_conninfo(**{k: str(v) for k, v in info.items()})
    parts = urlsplit(database_url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        netloc = f"{credentials.split(':', 1)[0]}@{host}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"], safe="/")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


@dataclass(frozen=True)
class ServeStatus:
    pid: int
    started_at: str
    roles: list[str]
    database_url: str
    database_schema: str
    embedded_database: bool
    kafka_bootstrap: str | None
    embedded_kafka: bool
    metrics: str | None

    @classmethod
    def now(cls, **fields: Any) -> ServeStatus:
        database_url = without_password(fields.pop("database_url"))
        started_at = datetime.now().astimezone().isoformat(timespec="seconds")
        return cls(pid=os.getpid(), started_at=started_at, database_url=database_url, **fields)


def path(home: Path) -> Path:
    return home / FILE_NAME


def write(home: Path, status: ServeStatus) -> None:
    """Written whole or not at all (a reader never sees half a file)."""
    home.mkdir(parents=True, exist_ok=True)
    partial = home / f".{FILE_NAME}.{status.pid}"
    partial.write_text(json.dumps(asdict(status), indent=2) + "\n")
    partial.replace(path(home))


def read(home: Path) -> ServeStatus | None:
    try:
        data = json.loads(path(home).read_text())
    except FileNotFoundError:
        return None
    return ServeStatus(**data)


def alive(status: ServeStatus) -> bool:
    return pid_alive(status.pid)


def remove(home: Path, pid: int) -> None:
    """Only the file this process wrote: another serve may have taken over."""
    current = read(home)
    if current is not None and current.pid == pid:
        path(home).unlink(missing_ok=True)
