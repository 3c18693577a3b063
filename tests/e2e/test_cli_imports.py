"""A short command imports only what it runs: ``ledger --help`` and the reads answer
at once because they never import Kafka, the consumers, the command side or the
whole wiring, and the reads of the read models not eventsourcing or pydantic-settings
either (bench/cli_startup.py times them). Each command runs in its own
process, which writes the modules it imported when it exits."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ledger.entrypoints.embedded import free_port
from ledger.entrypoints.settings import Settings
from tests.support import ledger_command, ledger_env

#: Runs ``ledger ARGS`` as the console script does; at exit, writes sys.modules to a file.
WRAPPER = """
import atexit, sys
modules_file = sys.argv.pop(1)
def write_modules():
    with open(modules_file, "w") as out:
        out.write("\\n".join(sorted(sys.modules)))
atexit.register(write_modules)
from ledger.entrypoints.cli import main
sys.argv[0] = "ledger"
main()
"""

#: What only running the service, writing, or tracing needs.
SERVICE_ONLY = (
    "kafka",
    "consumers",
    "commands",
    "prometheus_client",
    "pgserver",
    "ledger.entrypoints.bootstrap",
    "ledger.entrypoints.demo",
    "projections.runner",
    "projections.status_publisher",
    "projections.payments_outbox",
)
#: What a read needs and the help does not. (typer builds a command's parameters
#: with pydantic, so ``ledger balance --help`` imports pydantic, not the settings.)
READS = (
    "psycopg",
    "eventsourcing",
    "pydantic_settings",
    "structlog",
    "projections",
    "ledger.entrypoints.settings",
    "ledger.entrypoints.settings_fields",
)
#: What a history and the service need, and a read of the read models does not: the
#: application and eventsourcing (its PostgreSQL module and pool: the read asks on
#: one psycopg connection), and pydantic-settings (the read validates the settings'
#: fields with pydantic alone, which typer loads anyway).
APPLICATION_AND_SETTINGS = (
    "eventsourcing",
    "psycopg_pool",
    "pydantic_settings",
    "ledger.application",
    "ledger.entrypoints.settings",
)


def imported(tmp_path: Path, *args: str, env: dict[str, str]) -> tuple[set[str], str]:
    """The top-level and dotted module names the command imported, and its stdout."""
    modules_file = tmp_path / "modules.txt"
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(modules_file), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(modules_file.read_text().split()), result.stdout


def loaded(modules: set[str], *prefixes: str) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(f"{p}.") for p in prefixes))


@pytest.mark.parametrize("args", [["--help"], ["balance", "--help"], ["serve", "--help"]])
def test_help_imports_no_library_it_does_not_show(tmp_path: Path, args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    modules, shown = imported(tmp_path, *args, env=env)
    assert "Usage: ledger" in shown
    assert loaded(modules, *SERVICE_ONLY, *READS) == []


@pytest.mark.parametrize(
    "args",
    [
        ["balance", "acme", "--json"],
        ["balances"],
        ["usage", "acme", "--month", "2026-10"],
        ["invoices", "acme"],
        ["invoice", "2026-000001", "--json"],
        ["payments", "acme"],
        ["receivables", "--as-of", "2026-11-01", "--json"],
    ],
)
def test_reads_of_the_read_models_import_neither_the_service_nor_the_application(
    tmp_path: Path, books: dict[str, str], args: list[str]
) -> None:
    modules, shown = imported(tmp_path, *args, env=books)
    assert "acme" in shown or "2026-000001" in shown or '"as_of": "2026-11-01"' in shown
    assert loaded(modules, *SERVICE_ONLY, *APPLICATION_AND_SETTINGS) == []


def test_a_history_reads_through_the_application_without_the_service(
    tmp_path: Path, books: dict[str, str]
) -> None:
    modules, shown = imported(tmp_path, "history", "acme", "--json", env=books)
    assert '"DocumentIssued"' in shown
    assert loaded(modules, *SERVICE_ONLY, "pydantic_settings", "ledger.entrypoints.settings") == []
    assert {"ledger.application", "eventsourcing.postgres"} <= modules


def test_reads_answer_from_a_read_only_database(tmp_path: Path, books: dict[str, str]) -> None:
    """A standby serves reads: they create no tables (the writes still refuse).
    The balance worked out in test_cli.py: 2.29."""
    read_only = make_conninfo(
        books["LEDGER_DATABASE_URL"], options="-c default_transaction_read_only=on"
    )
    env = {**books, "LEDGER_DATABASE_URL": read_only}
    _, shown = imported(tmp_path, "balance", "acme", "--json", env=env)
    assert '"balance": "2.29"' in shown


def test_a_read_on_a_new_database_sets_the_ledger_up_and_finds_nothing(
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for()
    env = ledger_env(settings)
    executable = Path(sys.executable).with_name("ledger")
    result = subprocess.run(
        [str(executable), "balance", "nobody"], env=env, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stderr.strip()) == (1, "error: unknown account 'nobody'")
    with psycopg.connect(settings.database_url) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s",
                (settings.database_schema,),
            )
        }
    assert {"ledger_events", "balances", "balances_tracking", "documents"} <= tables


def test_a_read_of_a_database_that_does_not_answer_says_why(tmp_path: Path) -> None:
    """Asked on a connection of its own, not through a pool that retries until it times out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_DATABASE_URL"] = f"postgresql://nobody@127.0.0.1:{free_port()}/ledger"
    executable = Path(sys.executable).with_name("ledger")
    result = subprocess.run(
        [str(executable), "balance", "acme"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: database unavailable: connection failed:"), line


def test_a_read_refuses_a_bad_setting_as_every_command_does(books: dict[str, str]) -> None:
    """The read validates the settings without pydantic-settings, with the same line."""
    env = {**books, "LEDGER_TOPIC_PARTITIONS": "0"}
    expected = "error: invalid setting topic_partitions: Input should be greater than or equal to 1"
    for args in (["balance", "acme"], ["status"]):
        result = ledger_command(*args, env=env)
        assert (result.returncode, result.stderr.strip()) == (1, expected), args
