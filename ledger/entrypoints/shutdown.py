"""A bounded stop for ``ledger serve``.

After a stop (SIGTERM, or a role that crashed) each role finishes what it has
in hand and returns. A role blocked in a library's retry loop may not return
for minutes (during a PostgreSQL outage the connection pool waits 30 s per
attempt, and eventsourcing retries), and a service that neither works nor
exits is the worst state for a supervisor: it cannot restart what has not
stopped. So the orderly stop gets ``LEDGER_SHUTDOWN_TIMEOUT``; when that
expires, the watchdog logs which threads were still running and ends the
process with exit code 1. Nothing is lost by it: a batch whose transaction
did not commit is consumed again, since its Kafka position is stored only
with it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence

import structlog

log = structlog.get_logger(__name__)

#: The exit code of a stop that had to be forced.
FORCED_EXIT = 1


def arm(
    timeout: float, threads: Sequence[threading.Thread], cleanup: Callable[[], None]
) -> threading.Timer:
    """Exit the process ``timeout`` seconds from now unless it has exited by then.

    Never cancelled: it also bounds the interpreter's own exit, which waits for
    worker threads (a database worker stuck in a retry, for one).
    """

    def expire() -> None:
        try:
            log.error(
                "shutdown_timed_out",
                timeout_seconds=timeout,
                still_running=[t.name for t in threads if t.is_alive()],
            )
            cleanup()
        finally:
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(FORCED_EXIT)

    timer = threading.Timer(timeout, expire)
    timer.name = "shutdown-watchdog"
    timer.daemon = True
    timer.start()
    return timer
