"""structlog configuration: JSON lines for services, readable lines for the CLI."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

import structlog


def configure(
    *, json_lines: bool, level: int = logging.INFO, fields: Mapping[str, Any] | None = None
) -> None:
    """``fields`` go on every line of this process, whatever thread logs it
    (context variables would not reach kafka-python's thread)."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *([_add_fields(dict(fields))] if fields else []),
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # kafka-python logs connection chatter at INFO; keep only its warnings.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # In the CLI, a broker problem surfaces as the command's one-line error;
    # kafka-python's own lines (e.g. a metadata refresh cancelled at close) are noise.
    logging.getLogger("kafka").setLevel(logging.ERROR if json_lines else logging.CRITICAL)


def _add_fields(fields: dict[str, Any]) -> structlog.typing.Processor:
    def add(_logger: Any, _method: str, event: structlog.typing.EventDict) -> Any:
        for key, value in fields.items():
            event.setdefault(key, value)
        return event

    return add
