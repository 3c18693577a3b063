"""The entry point: runs a command and turns user errors (refusals, an unreachable
database or broker, bad settings, usage) into one line on stderr and an exit code.

Nothing heavy is imported here: ``ledger --help`` and the reads answer in a
fraction of the time the whole wiring takes to import (bench/cli_startup.py).
A library's errors are recognised only when a command imported that library
(:func:`_raised_by`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import typer

from ledger.entrypoints.cli import (
    auditing,
    operating,
    reading,
    reading_payments,
    refused,
    serving,
    upgrading,
    writing,
)
from ledger.entrypoints.cli.app import (
    READ_ONLY,
    UserError,
    app,
    err,
)
from ledger.entrypoints.cli.escaping import safe
from ledger.errors import LedgerError

if TYPE_CHECKING:
    from pydantic import ValidationError

# Importing a module registers its commands; the help lists them by what a user
# comes for: reading the books first, running the service last.
_BY_CONCERN = [
    m.__name__
    for m in (reading, reading_payments, writing, refused, auditing, operating, upgrading, serving)
]
app.registered_commands.sort(key=lambda c: _BY_CONCERN.index(getattr(c.callback, "__module__", "")))


def _fail(message: str, code: int = 1) -> NoReturn:
    """The one line a user error prints: upstream text in it is shown, never obeyed."""
    err.print(f"error: {safe(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _raised_by(module: str, *names: str) -> tuple[type[BaseException], ...]:
    """The exception classes ``names`` of ``module``, or none if no command imported it:
    what was never imported raised nothing, and importing a library (psycopg, kafka,
    pydantic) only to ask would cost every command the start-up the CLI saves."""
    loaded = sys.modules.get(module)
    return tuple(getattr(loaded, name) for name in names) if loaded is not None else ()


def _database_problem(exc: BaseException) -> str | None:
    """What a database failure means for the user, or None if it is a bug."""
    cause = exc if isinstance(exc, _raised_by("psycopg", "Error")) else exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if sqlstate == READ_ONLY_SQLSTATE:
        return READ_ONLY
    if sqlstate == INVALID_SCHEMA_SQLSTATE:
        return f"{first} (LEDGER_DATABASE_SCHEMA)"
    unavailable = _raised_by("psycopg", "OperationalError") + _raised_by(
        "eventsourcing.persistence", "OperationalError", "InterfaceError"
    )
    if isinstance(exc, unavailable):
        return f"database unavailable: {first}"
    return None


def _invalid_setting(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"invalid setting {where}: {first['msg']}"


READ_ONLY_SQLSTATE = "25006"


INVALID_SCHEMA_SQLSTATE = "3F000"


def main() -> None:
    try:
        # Not standalone, a command's ``typer.Exit(code)`` comes back as the return value.
        code = app(standalone_mode=False)
    except (UserError, LedgerError) as exc:
        _fail(str(exc))
    except _raised_by("pydantic_core", "ValidationError") as exc:
        _fail(_invalid_setting(exc))  # type: ignore[arg-type]
    except _raised_by("psycopg", "Error") + _raised_by(
        "eventsourcing.persistence", "PersistenceError"
    ) as exc:
        problem = _database_problem(exc)
        if problem is None:
            raise
        _fail(problem)
    except _raised_by("kafka.errors", "KafkaError") as exc:
        _fail(f"Kafka unavailable: {exc}")
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # usage errors arrive here in non-standalone mode
        # Click's ClickException, which recent typer releases vendor (typer._click)
        # instead of depending on click: recognised by what it offers, not its module.
        message, code = getattr(exc, "format_message", None), getattr(exc, "exit_code", None)
        if not (callable(message) and isinstance(code, int)):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # ``ledger`` alone: the help
            exc.show()  # type: ignore[attr-defined]
            sys.exit(code)
        context = getattr(exc, "ctx", None)
        hint = f" (see {context.command_path} --help)" if context is not None else ""
        _fail(f"{message()}{hint}", code)
    if isinstance(code, int) and code:
        sys.exit(code)
