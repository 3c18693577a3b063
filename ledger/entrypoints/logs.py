"""structlog configuration: JSON lines for services, readable lines for the CLI.

Libraries log through the standard library (kafka-python, eventsourcing,
pgserver, Python's warnings); their records go through the same structlog
renderer, so ``serve``'s stderr is JSON lines only, and a log collector never
meets a plain-text line. kafka-python logs connection chatter at INFO: it is
kept at WARNING unless ``kafka_level`` says otherwise; ``LEDGER_KAFKA_LOG_LEVEL``
(e.g. ``DEBUG``) overrides both, to diagnose group membership with the client's
own account of it.

structlog is imported when logs are configured or first written, not when
this module is: a short CLI command that logs nothing does not pay for it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import structlog


class LazyLogger:
    """``structlog.get_logger(name)``, with structlog imported at the first line logged.

    For the modules the CLI imports to register its commands (``serve``'s
    supervisor): importing structlog and rich's traceback support is a good part
    of a short command's start-up, for a logger it never uses.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, method: str) -> Any:
        import structlog

        return getattr(structlog.get_logger(self.name), method)


def configure(
    *,
    json_lines: bool,
    level: int = logging.INFO,
    fields: Mapping[str, Any] | None = None,
    kafka_level: int = logging.WARNING,
) -> None:
    """``fields`` go on every line of this process, whatever thread logs it
    (context variables would not reach kafka-python's thread)."""
    import structlog

    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        *([_add_fields(dict(fields))] if fields else []),
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    kafka_level = logging.getLevelNamesMapping().get(
        os.environ.get("LEDGER_KAFKA_LOG_LEVEL", "").upper(), kafka_level
    )
    logging.getLogger("kafka").setLevel(kafka_level)
    # "Task ... ran for 0.12s, blocking the event loop": kafka-python's network thread
    # timing itself while the consumer's batch holds the GIL. Ours, expected, not Kafka's.
    logging.getLogger("kafka.net.selector").setLevel(max(kafka_level, logging.ERROR))
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_crash


def _log_thread_crash(args: threading.ExceptHookArgs) -> None:
    """A library thread that dies says so in the same format as everything else."""
    import structlog

    if args.exc_type is SystemExit:
        return
    structlog.get_logger("ledger").error(
        "thread_crashed",
        thread=args.thread.name if args.thread else None,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _add_fields(fields: dict[str, Any]) -> structlog.typing.Processor:
    def add(_logger: Any, _method: str, event: structlog.typing.EventDict) -> Any:
        for key, value in fields.items():
            event.setdefault(key, value)
        return event

    return add
