"""The live benchmark's processes: ``ledger serve`` against its services, and the
publisher and poller run as spawned children (``bench/latency.py``)."""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import Services

#: The roles of the read side's serve when the roles are split.
PROJECTION_ROLES = ("projections", "publisher", "scheduler")


class Serve:
    """``ledger serve`` against the benchmark's services: one process, or with split
    roles one consumer serve and one for the read side."""

    def __init__(self, services: Services, consumers: int, split_roles: bool) -> None:
        ledger = str(Path(sys.executable).with_name("ledger"))
        scale = ["--consumers", str(consumers)]
        commands = (
            [
                [ledger, "serve", "--role", "consumer", *scale],
                [ledger, "serve", *(f"--role={role}" for role in PROJECTION_ROLES)],
            ]
            if split_roles
            else [[ledger, "serve", *scale]]
        )
        home = services.postgres.datadir.parent / "home"
        env = {
            **_environ(),
            "LEDGER_HOME": str(home),
            "LEDGER_DATABASE_URL": services.postgres.url,
            "LEDGER_KAFKA_BOOTSTRAP": services.broker.bootstrap,
            "LEDGER_TOPIC_PARTITIONS": str(services.settings.topic_partitions),
        }
        self.logs = [home / f"serve-{i}.log" for i in range(len(commands))]
        self.processes = [
            _start(command, env, log) for command, log in zip(commands, self.logs, strict=True)
        ]

    def check(self) -> None:
        """A serve that exited before its stop fails the benchmark, with its log."""
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                raise RuntimeError(f"ledger serve exited {process.returncode}:\n{_tail(log)}")

    def stop(self) -> float:
        """SIGTERM, then each must exit 0; returns their CPU seconds (children included)."""
        self.check()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.wait(timeout=90) != 0:
                raise RuntimeError(f"ledger serve exited {process.returncode}:\n{_tail(log)}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _environ() -> dict[str, str]:
    # The benchmark's own LEDGER_* settings would point serve elsewhere.
    return {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:  # the child has its own copy of the descriptor
        return subprocess.Popen(command, env=env, stdout=output, stderr=output, text=True)


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


class Child:
    """A function run in a spawned process; its result (or its error) comes back."""

    def __init__(self, target: Callable[..., Any], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.results: Any = context.SimpleQueue()
        # A daemon: if the benchmark fails, its helpers do not keep it from exiting.
        self.process = context.Process(
            target=_child, args=(self.results, target, *args), daemon=True
        )
        self.process.start()

    def result(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while self.results.empty():
            if not self.process.is_alive() and self.results.empty():
                raise RuntimeError(f"child exited {self.process.exitcode} without a result")
            if time.monotonic() > deadline:
                self.process.kill()
                raise TimeoutError("child gave no result in time")
            time.sleep(0.1)
        ok, value = self.results.get()
        self.process.join()
        if not ok:
            raise RuntimeError(f"child failed:\n{value}")
        return value


def _child(results: Any, target: Callable[..., Any], *args: Any) -> None:
    try:
        results.put((True, target(*args)))
    except BaseException:
        results.put((False, traceback.format_exc()))


def wait_until(
    condition: Callable[[], bool], seconds: float, what: str, check: Callable[[], None]
) -> None:
    """Polls ``condition`` until it holds; fails past the deadline or if ``check`` fails."""
    deadline = time.monotonic() + seconds
    while not condition():
        check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {seconds:.0f} s")
        time.sleep(0.5)
