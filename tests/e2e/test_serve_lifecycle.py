"""``ledger serve`` as an operator meets it: status, a bounded stop, one-line refusals,
JSON-only logs, and the embedded PostgreSQL stopped when asked (issue points 5 and 6)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from ledger.entrypoints.embedded import free_port, postgres_pid
from ledger.entrypoints.status_file import ServeStatus, without_password, write
from tests.conftest import MakeServices
from tests.support import ledger_command, ledger_env, wait_for

#: The projections role: one thread, the read models' single pass.
PROJECTIONS = ["read_models"]


class Serve:
    """``ledger serve`` in a subprocess, its stderr collected line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        executable = Path(sys.executable).with_name("ledger")
        self.process = subprocess.Popen(
            [str(executable), "serve", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [r for r in map(json.loads, list(self.lines)) if r.get("event") == event]

    def wait_serving(self) -> None:
        wait_for(
            lambda: self.logged("serving") or self.process.poll() is not None,
            timeout=60,
            what="serve to start",
        )
        assert self.process.poll() is None, "\n".join(self.lines)

    def stop(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.finish(timeout)

    def finish(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def serve_env(make_services: MakeServices, tmp_path: Path) -> dict[str, str]:
    services = make_services()
    return {**ledger_env(services.settings), "LEDGER_HOME": str(tmp_path / "home")}


def _errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_status_shows_the_running_serve_and_a_rebuild_is_refused_meanwhile(
    serve_env: dict[str, str],
) -> None:
    port = free_port()
    serve = Serve({**serve_env, "LEDGER_METRICS_PORT": str(port)}, "--role", "projections")
    try:
        serve.wait_serving()
        shown = ledger_command("status", "--json", env=serve_env)
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        assert (status["serve"], status["pid"], status["roles"]) == (
            "running",
            serve.process.pid,
            ["projections"],
        )
        assert status["database_url"] == without_password(serve_env["LEDGER_DATABASE_URL"])
        assert status["database_schema"] == serve_env["LEDGER_DATABASE_SCHEMA"]
        assert status["kafka_bootstrap"] == serve_env["LEDGER_KAFKA_BOOTSTRAP"]
        assert status["metrics"] == f"127.0.0.1:{port}"
        listening = {
            c.laddr
            for c in psutil.Process(serve.process.pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN
        }
        assert [(a.ip, a.port) for a in listening if a.port == port] == [("127.0.0.1", port)]
        for args in (["projections", "rebuild"], ["projections", "catch-up"]):
            refused = ledger_command(*args, env=serve_env)
            assert refused.returncode == 1, args
            [error] = _errors(refused.stderr)
            assert error.startswith("error: another process is writing the read models of schema")
        assert serve.stop() == 0
    finally:
        serve.kill()
    assert all(json.loads(line) for line in serve.lines)  # stderr: JSON lines only
    assert not (Path(serve_env["LEDGER_HOME"]) / "serve.json").exists()
    after = ledger_command("status", env=serve_env)
    assert after.returncode == 1
    assert after.stdout.startswith("ledger serve is not running here (no ")


def test_status_says_when_the_serve_it_names_has_exited(serve_env: dict[str, str]) -> None:
    exited = subprocess.Popen(["true"])  # a pid that no longer runs
    exited.wait()
    pid = exited.pid
    write(
        Path(serve_env["LEDGER_HOME"]),
        ServeStatus(
            pid=pid,
            started_at="2026-12-01T19:00:00+00:00",
            roles=["consumer"],
            database_url="postgresql://ledger@db/ledger",
            database_schema="public",
            embedded_database=False,
            kafka_bootstrap="127.0.0.1:9092",
            embedded_kafka=False,
            metrics=None,
        ),
    )
    shown = ledger_command("status", env=serve_env)
    assert shown.returncode == 1
    assert f"names pid {pid}, which has exited" in " ".join(shown.stdout.split())
    assert json.loads(ledger_command("status", "--json", env=serve_env).stdout)["serve"] == "stale"


def test_an_occupied_metrics_port_is_one_line(serve_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        serve = Serve({**serve_env, "LEDGER_METRICS_PORT": str(port)}, "--role", "projections")
        try:
            code = serve.finish(timeout=60)
        finally:
            serve.kill()
    assert code == 1
    errors = [line for line in serve.lines if line.startswith("error:")]
    assert errors == [
        f"error: cannot serve metrics on 127.0.0.1:{port}: Address already in use"
        " (LEDGER_METRICS_HOST, LEDGER_METRICS_PORT)"
    ]
    assert all(json.loads(line) for line in serve.lines if line not in errors)
    assert not (Path(serve_env["LEDGER_HOME"]) / "serve.json").exists()


def test_serve_exits_within_the_shutdown_timeout_when_its_threads_are_stuck(
    serve_env: dict[str, str],
) -> None:
    serve = Serve({**serve_env, "LEDGER_SHUTDOWN_TIMEOUT": "PT2S"}, "--role", "projections")
    schema = serve_env["LEDGER_DATABASE_SCHEMA"]
    url = serve_env["LEDGER_DATABASE_URL"]
    try:
        serve.wait_serving()
        with psycopg.connect(url) as locker:
            # The read models' pass polls the events table: with it locked, it blocks
            # inside the database, as in an outage, and cannot see the stop.
            locker.execute(f'LOCK TABLE "{schema}".ledger_events IN ACCESS EXCLUSIVE MODE')
            with psycopg.connect(url, autocommit=True) as observer:

                def blocked() -> bool:
                    row = observer.execute(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                        (f'"{schema}".ledger_events',),
                    ).fetchone()
                    return row is not None and row[0] >= len(PROJECTIONS)

                wait_for(blocked, timeout=30, what="the read models' pass to block on the lock")
            started = time.monotonic()
            serve.process.send_signal(signal.SIGTERM)
            code = serve.finish(timeout=30)
            elapsed = time.monotonic() - started
            locker.rollback()
    finally:
        serve.kill()
    assert code == 1
    assert elapsed < 2 + 4, elapsed  # the timeout, and the time to log and exit
    [timed_out] = serve.logged("shutdown_timed_out")
    assert (timed_out["timeout_seconds"], sorted(timed_out["still_running"])) == (
        2.0,
        PROJECTIONS,
    )
    assert not (Path(serve_env["LEDGER_HOME"]) / "serve.json").exists()


def test_the_embedded_postgres_starts_quietly_and_stops_when_asked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LEDGER_") and key != "XDG_RUNTIME_DIR"
    }
    env["LEDGER_HOME"] = str(home)
    try:
        read = ledger_command("balances", "--json", env=env)
        assert read.returncode == 0, read.stderr
        assert read.stderr.splitlines() == [
            f"LEDGER_DATABASE_URL is unset: using embedded PostgreSQL in {home / 'pg'}"
        ]
        pid = postgres_pid(home / "pg")
        assert pid is not None  # left running for the next command, until stopped
        status = json.loads(ledger_command("status", "--json", env=env).stdout)
        assert status["embedded_postgres"] == {"folder": str(home / "pg"), "pid": pid}
        stopped = ledger_command("stop-embedded", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.splitlines() == [f"stopped the embedded PostgreSQL in {home / 'pg'}"]
        assert postgres_pid(home / "pg") is None
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    finally:
        ledger_command("stop-embedded", env=env)


@pytest.mark.slow
def test_the_demo_runs_without_alarming_warnings_and_leaves_no_postgres(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LEDGER_") and key != "XDG_RUNTIME_DIR"
    }
    env["LEDGER_HOME"] = str(home)
    try:
        demo = ledger_command("demo", env=env, timeout=300)
    finally:
        ledger_command("stop-embedded", env=env)
    assert demo.returncode == 0, demo.stderr
    # The demo's closer and its consumer no longer collide (no batch redone), and the
    # only warnings are the dead letters the demo publishes on purpose.
    for alarming in ("redoing_batch", "prepared_batch_discarded", "XDG_RUNTIME_DIR", "Warning"):
        assert alarming not in demo.stderr, alarming
    warnings = [line for line in demo.stderr.splitlines() if "[warning" in line]
    assert warnings and [w for w in warnings if "dead_lettered" not in w] == []
    # Every Kafka client is closed before the embedded broker stops: none reconnects.
    assert [line for line in demo.stderr.splitlines() if "[error" in line] == []
    assert "demo finished" in demo.stderr
    assert postgres_pid(home / "demo" / "pg") is None
