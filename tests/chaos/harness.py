"""The fault suite's operations side: its own PostgreSQL and broker (so it can stop
and start them), the ledger as real ``ledger serve`` processes with a log file
each, a supervisor loop that restarts what died, and the seeded fault schedule."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from consumers.topics import ensure_topics
from ledger.entrypoints.embedded import EmbeddedBroker, EmbeddedPostgres, free_port, start_broker
from ledger.entrypoints.embedded import start_postgres as embedded_postgres
from ledger.entrypoints.settings import Settings
from tests.support import json_lines

PARTITIONS = 4
KILL_TARGETS = ("consumer_child", "consumer_supervisor", "projections", "publisher")


@dataclass(frozen=True)
class Fault:
    at: int  # position in the publication order
    kind: str  # kill, pg_restart, broker_restart, join, leave
    target: str = ""


def schedule(seed: int, published: int, kills: int) -> list[Fault]:
    """Derived only from the seed and the stream's length: a seed replays it."""
    rng = random.Random(f"faults-{seed}")

    def point(low: float, high: float) -> int:
        return int(published * rng.uniform(low, high))

    faults = [Fault(point(0.03, 0.97), "kill", rng.choice(KILL_TARGETS)) for _ in range(kills)]
    join = point(0.10, 0.30)
    faults += [
        Fault(point(0.25, 0.40), "pg_restart"),
        Fault(point(0.55, 0.75), "broker_restart"),
        Fault(join, "join"),
        Fault(join + int(published * 0.15), "leave"),
    ]
    return sorted(faults, key=lambda f: f.at)


class Postgres:
    """pgserver on a datadir of the test's own, stopped and started with ``pg_ctl``."""

    def __init__(self, datadir: Path) -> None:
        self.datadir = datadir
        self.server: EmbeddedPostgres = embedded_postgres(datadir, persistent=True)
        self.url = self.server.url
        self.up = True
        # Every ledger process holds a few connection pools (the ledger's, the consumer's,
        # one per projection); a run has a dozen processes and the CLI besides, beyond
        # pgserver's default of 100 connections.
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET max_connections = 400")
        self.stop()
        self.start()

    def _pg_ctl(self, *args: str) -> None:
        from pgserver import pg_ctl

        pg_ctl(list(args), pgdata=self.datadir, user=self.server.server.system_user, timeout=30)

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")
        self.up = False

    def start(self) -> None:
        socket_dir = psycopg.conninfo.conninfo_to_dict(self.url)["host"]
        log = self.datadir / "restart.log"
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(log), "start")
        self.up = True

    def close(self) -> None:
        if self.up:
            self.stop()


class Broker:
    """Tansu on a fixed port: a restart is a new, empty log at the same address."""

    def __init__(self) -> None:
        self.port = free_port()
        self.broker: EmbeddedBroker = start_broker(self.port)
        self.bootstrap = self.broker.bootstrap

    def restart(self) -> None:
        self.broker.stop()
        self.broker = start_broker(self.port)

    def ensure_topics(self, settings: Settings) -> None:
        ensure_topics(settings.kafka_config(self.bootstrap), settings.all_topics(), PARTITIONS)

    def close(self) -> None:
        self.broker.stop()


@dataclass
class Role:
    """One ``ledger serve`` process the test keeps running (restarts when it dies)."""

    name: str
    args: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    log_start: int = 0
    wanted: bool = True
    starts: int = 0

    def start(self, env: dict[str, str]) -> None:
        ledger = Path(sys.executable).with_name("ledger")
        self.log_start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(ledger), "serve", *self.args], env=env, stdout=log, stderr=log
            )
        self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logged(self, event: str) -> bool:
        """Whether this start of the process has logged ``event`` yet."""
        return any(line.get("event") == event for line in json_lines(self.log, self.log_start))

    def children(self) -> list[int]:
        """The consumer processes this start of ``serve`` logged (``consumer_processes_started``)."""
        pids: list[int] = []
        for line in json_lines(self.log, self.log_start):
            if line.get("event") == "consumer_processes_started":
                pids = list(line["pids"])
        return [pid for pid in pids if _running(pid)]


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of a dead supervisor is not a target
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@dataclass
class Supervisor:
    """The test's "restart, don't limp" loop over the roles."""

    env: dict[str, str]
    roles: dict[str, Role] = field(default_factory=dict)
    restarts: int = 0
    kills: int = 0
    paused: bool = False  # while PostgreSQL or the broker is down

    def add(self, role: Role) -> None:
        self.roles[role.name] = role
        role.start(self.env)

    def tend(self) -> None:
        if self.paused:
            return
        for role in self.roles.values():
            if role.wanted and not role.alive():
                role.start(self.env)
                self.restarts += 1

    def kill(self, target: str, rng: random.Random) -> bool:
        """SIGKILL one process of ``target``; False when none is up yet (try again later)."""
        if target == "consumer_child":
            pids = self.roles["consumers"].children()
            if not pids:
                return False
            os.kill(rng.choice(sorted(pids)), signal.SIGKILL)
        else:
            role = self.roles["consumers" if target == "consumer_supervisor" else target]
            if not role.alive() or role.process is None:
                return False
            role.process.kill()
        self.kills += 1
        return True

    def stop_role(self, name: str) -> None:
        role = self.roles[name]
        role.wanted = False
        if role.alive() and role.process is not None:
            role.process.send_signal(signal.SIGTERM)

    def stop_all(self, timeout: float = 60) -> dict[str, int | None]:
        for role in self.roles.values():
            role.wanted = False
            if role.alive() and role.process is not None:
                role.process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        deadline = time.monotonic() + timeout
        for name, role in self.roles.items():
            if role.process is None:
                continue
            try:
                codes[name] = role.process.wait(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                role.process.kill()
                codes[name] = role.process.wait()
        return codes
