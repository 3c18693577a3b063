"""Guards for the places where the ledger leans on a library's internals.

Each entry below is the pinned library's own code that one of our overrides,
forks or patches depends on (docs/library-touches.md says which, why, and
what removing it would cost). The fingerprint is a hash of that code's syntax
tree without docstrings, so a new comment or docstring does not trip it but a
changed statement, argument or decorator does. When one fails, the library
changed under us: re-check the named touch against the new code, adapt it,
then record the new fingerprint (the failure message prints it).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import pytest
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import JSONTranscoder
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresProcessRecorder,
    PostgresTrackingRecorder,
)
from kafka import KafkaConsumer
from kafka.coordinator.base import BaseCoordinator
from psycopg.sql import SQL, Identifier
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from commands.store import LibraryChanged, binary_events_array


def fingerprint_source(source: str) -> str:
    """A hash of the syntax tree of ``source``, docstrings left out (comments never are in it)."""
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and (
            ast.get_docstring(node, clean=False) is not None
        ):
            node.body = node.body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


def fingerprint(code: Callable[..., Any]) -> str:
    return fingerprint_source(inspect.getsource(code))


@dataclass(frozen=True)
class Pinned:
    distribution: str
    code: Callable[..., Any]
    fingerprint: str
    recheck: str


PINNED = [
    # 1. The fork of the insert (commands/store.py, LedgerRecorder.insert_events).
    Pinned(
        "eventsourcing",
        PostgresApplicationRecorder.insert_events,
        "24041a030ef982cf",
        "LedgerRecorder.insert_events is a fork of it: carry over what changed (steps, "
        "their order, errors, retry), or drop the fork if the pipeline no longer hangs",
    ),
    Pinned(
        "eventsourcing",
        PostgresApplicationRecorder._insert_stored_events,
        "b86998b8f8582461",
        "the fork calls it for the table lock, NOTIFY and the insert",
    ),
    Pinned(
        "eventsourcing",
        PostgresAggregateRecorder._insert_stored_events,
        "835232e4ee1290d8",
        "it executes insert_events_statement, which LedgerRecorder rewrites (binary_events_array)",
    ),
    Pinned(
        "eventsourcing",
        PostgresApplicationRecorder._fetch_ids_after_insert_events,
        "668309c083071355",
        "the fork calls it to return the notification ids",
    ),
    # 2. The accepted hook (STYLE.md point 6).
    Pinned(
        "eventsourcing",
        PostgresProcessRecorder._insert_events,
        "55a43c3f822945e9",
        "LedgerRecorder._insert_events extends it: the tracking row must still be written "
        "there, before the side tables, in the insert's transaction",
    ),
    Pinned(
        "eventsourcing",
        PostgresApplicationRecorder._insert_events,
        "dd206524d3ad26e5",
        "the hook's base: still a no-op taking (curs, stored_events, **kwargs)?",
    ),
    # 3. Ledger.record (ledger/application/__init__.py) and save_batch (commands/handlers.py).
    Pinned(
        "eventsourcing",
        Application.save,
        "e304a96067599e2e",
        "Ledger.record is what save() does once the events are collected: carry over any new step",
    ),
    Pinned(
        "eventsourcing",
        Application._record,
        "3998a4392f3e82c3",
        "Ledger.record calls it (events, tracking, side records; the aggregate cache)",
    ),
    Pinned(
        "eventsourcing",
        Application._take_snapshots,
        "8201a29e44175944",
        "Ledger overrides it (snapshots from memory): carry over any new rule of when to snapshot",
    ),
    Pinned(
        "eventsourcing",
        Application.take_snapshot,
        "4b041765db57e805",
        "Ledger._take_snapshots does what it does without reloading: still Snapshot.take + put?",
    ),
    Pinned(
        "eventsourcing",
        Snapshot.take,
        "ef43b623bbd296ae",
        "Ledger._take_snapshots takes it from the aggregate in memory: still vars() of it?",
    ),
    Pinned(
        "eventsourcing",
        Application._notify,
        "3f15403575a3c02d",
        "Ledger.record skips it because it is a no-op: is it still?",
    ),
    Pinned(
        "eventsourcing",
        ProcessingEvent.__init__,
        "94fb7309720e11cc",
        "save_batch fills events, aggregates and saved_kwargs directly",
    ),
    Pinned(
        "eventsourcing",
        ProcessingEvent.collect_events,
        "0c0c3b03bcdabbd5",
        "save_batch does what it does, inline, without its Protocol checks",
    ),
    # 4. The projections' tracking (projections/view.py, TableView).
    Pinned(
        "eventsourcing",
        PostgresTrackingRecorder._insert_tracking,
        "0b1177386303de4d",
        "TableView.apply calls it in the rows' transaction",
    ),
    Pinned(
        "eventsourcing",
        PostgresApplicationRecorder.select_notifications,
        "23cdd76dc45ee3f8",
        "projections/runner.py select_notifications is its binary-format copy: same "
        "columns, order and filters?",
    ),
    Pinned(
        "eventsourcing",
        PostgresTrackingRecorder._create_table,
        "2773c1e84c7b83c4",
        "TableView.reset keeps the table_migration_identifier row this migration reads",
    ),
    # 5. pydantic (consumers/messages.py, ledger/entrypoints/schemas.py).
    Pinned(
        "pydantic",
        TypeAdapter.validate_json,
        "ecbbbdbb3c91c71e",
        "consumers/messages.py calls TypeAdapter.validator.validate_json instead: does the "
        "wrapper now do something the decoder needs?",
    ),
    Pinned(
        "pydantic",
        GenerateJsonSchema.field_is_required,
        "8cae64767a98825c",
        "ledger/entrypoints/schemas.py _ContractSchema overrides it for outbound (serialization) schemas",
    ),
    # 6. kafka-python (consumers/group_membership.py).
    Pinned(
        "kafka-python",
        BaseCoordinator.maybe_leave_group_async,
        "9646790ae9f5e738",
        "group_membership replaces it on Tansu with reset_generation(): is that still all "
        "it does locally besides LeaveGroup?",
    ),
    Pinned(
        "kafka-python",
        BaseCoordinator.maybe_leave_group,
        "74bfded40a6be59f",
        "it must still look maybe_leave_group_async up on the instance (the replacement)",
    ),
    Pinned(
        "kafka-python",
        BaseCoordinator.close,
        "40bd0496eb43caf5",
        "closing must still leave the group through maybe_leave_group",
    ),
    Pinned(
        "eventsourcing",
        JSONTranscoder._decode_obj,
        "6d686e9f01aa0c5a",
        "LedgerTranscoder._decode_obj must still decode what the library's decodes, and"
        " hand it what it does not know (ledger/application/transcodings.py)",
    ),
    Pinned(
        "eventsourcing",
        JSONTranscoder.__init__,
        "da6099b612960575",
        "the decoder must still call self._decode_obj for each JSON object",
    ),
    Pinned(
        "eventsourcing",
        JSONTranscoder.register,
        "224f4aa09fe98eec",
        "LedgerTranscoder.register keeps its decoders by the name the library keys by",
    ),
]


@pytest.mark.parametrize("pinned", PINNED, ids=lambda p: p.code.__qualname__)
def test_the_library_code_a_touch_depends_on_is_the_pinned_code(pinned: Pinned) -> None:
    found = fingerprint(pinned.code)
    assert found == pinned.fingerprint, (
        f"{pinned.distribution} {version(pinned.distribution)} changed "
        f"{pinned.code.__module__}.{pinned.code.__qualname__} (fingerprint {found}, "
        f"pinned {pinned.fingerprint}). Re-check: {pinned.recheck}. "
        "See docs/library-touches.md."
    )


def test_a_new_docstring_or_comment_leaves_a_fingerprint_as_it_was() -> None:
    bare = "def f(x):\n    return x + 1\n"
    documented = 'def f(x):\n    """Says why."""\n    return x + 1  # a comment\n'
    changed = "def f(x):\n    return x + 2\n"
    decorated = "@retry(OSError)\ndef f(x):\n    return x + 1\n"
    assert fingerprint_source(documented) == fingerprint_source(bare)
    assert len({fingerprint_source(s) for s in (bare, changed, decorated)}) == 3


def test_the_consumer_still_keeps_its_coordinator_where_group_membership_patches_it() -> None:
    init = inspect.getsource(KafkaConsumer.__init__)
    assert "self._coordinator = ConsumerCoordinator(" in init, (
        "kafka-python no longer sets KafkaConsumer._coordinator: "
        "re-check consumers/group_membership.py (docs/library-touches.md)"
    )


def test_the_binary_insert_changes_only_the_events_parameter() -> None:
    library = SQL("INSERT INTO {} SELECT * FROM unnest(%s::{}[])").format(
        Identifier("e"), Identifier("t")
    ) + SQL(" RETURNING notification_id")
    assert binary_events_array(library).as_string() == (
        'INSERT INTO "e" SELECT * FROM unnest(%b::"t"[]) RETURNING notification_id'
    )


def test_a_library_statement_without_the_one_events_parameter_stops_the_recorder() -> None:
    with pytest.raises(LibraryChanged, match="0 '%s::' parameters"):
        binary_events_array(SQL("INSERT INTO x SELECT * FROM unnest(%(events)s)") + SQL(""))
