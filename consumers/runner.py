"""The consumer loop: Kafka records in, one PostgreSQL transaction per partition batch.

Exactly-once effect, step by step (``docs/exactly-once.md``):

1. On every partition assignment, seek to the position stored in PostgreSQL
   (``Tracking("kafka:<topic>:<partition>", offset)``), not Kafka's committed
   offset; Kafka group commits are made for lag monitoring only.
2. Decode and validate each record (pure), drop duplicates within the batch and
   those whose CloudEvent ``(source, id)`` is already in ``ledger_dedupe``.
3. Map to commands, apply them to aggregates (one event per account per batch).
4. Publish dead letters (refused records) to the dead-letter topic and flush:
   network I/O happens before, never inside, the database transaction.
5. Commit events + tracking + dedupe keys + dead-letter rows in one
   transaction. If it collides (the position or a dedupe key or an aggregate
   version already taken: another writer got there first, or this consumer is
   stale after a rebalance), nothing is written: the cache is evicted and the
   partition rewound to the stored position, and the batch is redone.

A crash anywhere before step 5 commits leaves the stored position where it was,
so the records are consumed again; after it, they are never applied again.

Pipelining: step 5 runs on a worker thread while this thread polls and
decodes the next batch (steps 1-2 without the dedupe lookup, and the mapping
of step 3: pure work). PostgreSQL works in its own process and the client
releases the GIL while it waits, so the commit of batch N overlaps the pure
work of batch N+1. At most one save is in flight; saves stay strictly
sequential, in order. Batch N+1 is applied to aggregates only after batch
N's save succeeded; if it failed, the cache is evicted, N's partition is
rewound, and the prepared N+1 is discarded and its partition rewound too:
both are redone from their stored positions. The dedupe lookup of N+1 is
queued on the same worker behind N's save, so it sees N's keys. A rebalance,
``caught_up`` and ``close`` (SIGTERM) all settle the save in flight first.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from eventsourcing.persistence import IntegrityError, OperationalError, Tracking
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from commands.handlers import (
    BatchWork,
    PoisonCommand,
    Rejection,
    apply_commands,
    contact_pairs,
    origins_of,
    save_batch,
)
from commands.models import AccountCommand
from commands.store import DeadLetterRow, LedgerRecorder
from consumers.mapping import to_commands
from consumers.messages import Accepted, Record, RecordLike, Refused, decode
from consumers.metrics import BATCH_SECONDS, CONSUMER_LAG, DEAD_LETTERS, MESSAGES
from ledger.account import account_uuid
from ledger.application import Ledger
from ledger.plans import Catalogue

log = structlog.get_logger(__name__)


def tracking_name(topic: str, partition: int) -> str:
    return f"kafka:{topic}:{partition}"


#: Poll timeout while a save is in flight: if no records come this soon, the
#: consumer settles the save instead of idling (keeps ``drain`` prompt).
IN_FLIGHT_POLL_MS = 20

#: Seconds a thread may hold the GIL while another waits for it (CPython's default is 5 ms).
SWITCH_INTERVAL = 0.0005


def _shorten_switch_interval() -> None:
    """Hand the GIL over sooner (process-wide; only ever lowered).

    The consumer thread blocks on PostgreSQL a dozen times per batch; while it
    waits, kafka-python's network thread takes the GIL (it parses fetch
    responses in Python) and, with the default interval, keeps it for up to
    5 ms after the database has answered. Measured: ~10% more throughput.
    """
    if sys.getswitchinterval() > SWITCH_INTERVAL:
        sys.setswitchinterval(SWITCH_INTERVAL)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is in flight.

    A batch holds tens of thousands of young objects (records, validated
    messages, dedupe rows) alive until it commits; the collector would scan
    them again and again (measured: ~15% of the consumer's time) only to find
    almost nothing, since nearly everything here is freed by reference
    counting. Collection resumes between batches, when the batch is garbage.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class TopicRoles:
    """Topic names by role (configurable), and which event types each accepts."""

    by_topic: dict[str, frozenset[str]]
    priority: frozenset[str] = frozenset()  # consumed first: the accounts topic
    #: Topics whose messages are idempotent by their own version (contact changes):
    #: no dedupe keys are looked up or stored for them.
    versioned: frozenset[str] = frozenset()

    @property
    def topics(self) -> list[str]:
        return sorted(self.by_topic)


@dataclass
class BatchOutcome:
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    accounts: int = 0
    #: Nothing of the batch was stored; its records are consumed again.
    redo: bool = False
    #: Redone without being applied: prepared while the save before it failed.
    discarded: bool = False
    topic: str = ""
    partition: int = -1
    first_offset: int = -1
    last_offset: int = -1


#: Kafka's default message limit is 1 MiB; JSON-escaped payloads grow up to 6x.
MAX_DEAD_LETTER_PAYLOAD = 128 * 1024


def dead_letter_message(record: RecordLike, reason: str) -> bytes:
    value = record.value or b""
    truncated = len(value) > MAX_DEAD_LETTER_PAYLOAD
    if truncated:
        value = value[:MAX_DEAD_LETTER_PAYLOAD]
    try:
        payload: Any = value.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        payload, encoding = b64encode(value).decode(), "base64"
    return json.dumps(
        {
            "reason": reason,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
            "payload": payload,
            "payload_encoding": encoding,
            "payload_truncated": truncated,
            "dead_lettered_at": datetime.now(UTC).isoformat(),
        }
    ).encode()


@dataclass
class PartitionBatch:
    """The pure part of a batch: decode, split, drop in-batch duplicates."""

    records: Sequence[RecordLike]
    accepted_types: frozenset[str]
    accepted: list[Accepted] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    duplicates: int = 0

    #: The dedupe key of each accepted message, in the same order.
    keys: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        seen: set[tuple[str, str]] = set()
        accepted_types = self.accepted_types
        for record in self.records:
            result = decode(record, accepted_types)
            if isinstance(result, Refused):
                self.refused.append(result)
                continue
            event = result.event
            key = (event.source, event.id)  # Accepted.dedupe_key, inlined
            if key in seen:
                self.duplicates += 1
            else:
                seen.add(key)
                self.keys.append(key)
                self.accepted.append(result)

    def drop_known(self, known: set[tuple[str, str]]) -> None:
        if not known:
            return
        fresh = [(a, k) for a, k in zip(self.accepted, self.keys, strict=True) if k not in known]
        self.duplicates += len(self.accepted) - len(fresh)
        self.accepted = [a for a, _ in fresh]
        self.keys = [k for _, k in fresh]


@dataclass
class _Prepared:
    """A partition batch decoded and mapped (pure), not applied yet."""

    tp: TopicPartition
    records: Sequence[RecordLike]
    batch: PartitionBatch
    commands: list[AccountCommand]
    #: ``known_keys`` of the batch, queued behind the save in flight (if any).
    lookup: Future[set[tuple[str, str]]]
    started: float
    #: Stored versions of the batch's contacts, queued the same way (versioned topics).
    contacts: Future[dict[tuple[str, str], tuple[int, bool]]] | None = None


@dataclass
class _InFlight:
    """A partition batch applied to the aggregates, its save running on the worker."""

    tp: TopicPartition
    records: Sequence[RecordLike]
    work: BatchWork
    outcome: BatchOutcome
    started: float
    save: Future[None]


class LedgerConsumer:
    def __init__(
        self,
        *,
        ledger: Ledger,
        catalogue: Catalogue,
        kafka_config: dict[str, Any],
        roles: TopicRoles,
        group_id: str,
        dead_letter_topic: str,
        max_records: int = 20000,
        poll_timeout_ms: int = 200,
        on_batch: Callable[[BatchOutcome], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.catalogue = catalogue
        self.roles = roles
        self.dead_letter_topic = dead_letter_topic
        self.max_records = max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.on_batch = on_batch
        recorder = ledger.process_recorder
        assert isinstance(recorder, LedgerRecorder), "bootstrap sets PROCESS_RECORDER_TOPIC"
        self.recorder = recorder
        partition_fetch_bytes = max(4 * 1024 * 1024, max_records * 512)
        self.consumer = KafkaConsumer(
            **kafka_config,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            max_poll_interval_ms=60000,
            # One fetch per partition should hold a whole batch (~300-500 bytes a
            # record): a poll then hands over one full-sized batch per partition.
            max_partition_fetch_bytes=partition_fetch_bytes,
            fetch_max_bytes=max(32 * 1024 * 1024, 4 * partition_fetch_bytes),
        )
        self.producer = KafkaProducer(**kafka_config, acks="all", linger_ms=5)
        self.consumer.subscribe(roles.topics, listener=_SeekToStoredPositions(self))
        self._held_back: dict[TopicPartition, int] = {}
        self._lag_reported = 0.0
        _shorten_switch_interval()
        # One worker, so saves and dedupe lookups run one at a time, in the order submitted.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-db")
        self._in_flight: _InFlight | None = None
        self._settled: list[BatchOutcome] = []
        # Rebalance callbacks run on kafka-python's IO thread: they settle the save
        # in flight under this lock, never in the middle of this thread's doing so.
        self._pipeline = threading.RLock()

    # ------------------------------------------------------------------ positions

    def stored_position(self, tp: TopicPartition) -> int | None:
        position: int | None = self.recorder.max_tracking_id(tracking_name(tp.topic, tp.partition))
        return position

    def seek_to_stored(self, partitions: Sequence[TopicPartition]) -> None:
        # A save in flight must not race the seek: its outcome moves the stored position.
        self._settle()
        for tp in partitions:
            stored = self.stored_position(tp)
            if stored is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, stored + 1)
            log.info(
                "partition_assigned", topic=tp.topic, partition=tp.partition, resume_after=stored
            )
        self._hold_back_until_accounts_caught_up(partitions)

    def _hold_back_until_accounts_caught_up(self, assigned: Sequence[TopicPartition]) -> None:
        """Usage waits until the account facts present at assignment are applied,
        so an email is not dead-lettered for an account whose opening is queued.

        Runs on kafka-python's IO thread (rebalance callback): only local calls
        here; the end offsets are fetched after the poll returns.
        """
        # Start from a clean slate: partitions kept across a rebalance keep their paused flag.
        self._held_back = {}
        paused = list(self.consumer.paused())
        if paused:
            self.consumer.resume(*paused)
        priority = [tp for tp in assigned if tp.topic in self.roles.priority]
        others = [tp for tp in assigned if tp.topic not in self.roles.priority]
        if priority and others:
            self.consumer.pause(*others)
            self._held_back = {tp: -1 for tp in priority}

    def _maybe_release(self) -> None:
        if not self._held_back:
            return
        unknown = [tp for tp, end in self._held_back.items() if end < 0]
        if unknown:
            self._held_back.update(self.consumer.end_offsets(unknown))
        assigned = self.consumer.assignment()
        for tp, end in list(self._held_back.items()):
            # The consumer's own position counts too: a transaction marker or an
            # expired log can keep the stored position short of the end forever.
            reached = max(
                self._next_offset(tp), self.consumer.position(tp) if tp in assigned else 0
            )
            if tp not in assigned or reached >= end:
                del self._held_back[tp]
        if not self._held_back:
            paused = list(self.consumer.paused())
            if paused:
                self.consumer.resume(*paused)
            log.info("accounts_caught_up_resuming_usage")

    # ------------------------------------------------------------------ loop

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; the batch in flight is always finished first."""
        log.info("consumer_started", topics=self.roles.topics)
        try:
            while not stop.is_set():
                self.poll_once()
        finally:
            self.close()

    def poll_once(self) -> list[BatchOutcome]:
        with _collector_paused():
            return self._poll_once()

    def _poll_once(self) -> list[BatchOutcome]:
        timeout_ms = self.poll_timeout_ms
        if self._in_flight is not None:
            timeout_ms = min(timeout_ms, IN_FLIGHT_POLL_MS)
        polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=self.max_records)
        ordered = sorted(
            polled, key=lambda tp: (tp.topic not in self.roles.priority, tp.topic, tp.partition)
        )
        for tp in ordered:
            # kafka-python's records have the attributes a Record has: not copied.
            prepared = self._prepare(tp, polled[tp])  # overlaps the save in flight
            with self._pipeline:
                if self._settle():
                    self._apply_and_save(prepared)
                else:
                    self._discard(prepared)
        if not polled:
            self._settle()  # nothing to overlap with: finish the save in flight
        if polled and time.monotonic() - self._lag_reported > 1.0:
            self._report_lag(list(polled))
        self._maybe_release()
        with self._pipeline:
            outcomes, self._settled = self._settled, []
        return outcomes

    @property
    def in_flight(self) -> bool:
        """Whether a batch's save is still running (its outcome comes with a later poll)."""
        return self._in_flight is not None

    def process(self, tp: TopicPartition, records: Sequence[RecordLike]) -> BatchOutcome:
        """One partition batch, start to commit, not pipelined (the save before it is
        settled first; its outcome is returned by the next ``poll_once``)."""
        with _collector_paused(), self._pipeline:
            self._settle()
            prepared = self._prepare(tp, records)
            self._apply_and_save(prepared)
            assert self._in_flight is not None
            outcome = self._in_flight.outcome
            self._settle()
            self._settled.remove(outcome)
            return outcome

    def _prepare(self, tp: TopicPartition, records: Sequence[RecordLike]) -> _Prepared:
        """The pure part: decode, validate, drop in-batch duplicates, map to commands.

        Which keys are stored already is asked on the worker, behind the save in
        flight (so it sees that batch's keys), while this thread maps the batch.
        """
        started = time.perf_counter()
        batch = PartitionBatch(records, self.roles.by_topic[tp.topic])
        contacts = None
        if tp.topic in self.roles.versioned:
            lookup: Future[set[tuple[str, str]]] = Future()
            lookup.set_result(set())
            commands = to_commands(batch.accepted)
            contacts = self._worker.submit(self.recorder.latest_contacts, contact_pairs(commands))
        else:
            lookup = self._worker.submit(self.recorder.known_keys, batch.keys)
            commands = to_commands(batch.accepted)
        return _Prepared(tp, records, batch, commands, lookup, started, contacts)

    def _apply(self, prepared: _Prepared, commands: list[AccountCommand]) -> BatchWork:
        """Apply the batch; a command that fails unexpectedly is taken out and refused.

        Its failure may have left aggregates half-changed, so the batch's work is
        thrown away, what it loaded is evicted (nothing of it was saved: no save
        is in flight), and the batch is applied again without that command.
        """
        refused: list[Rejection] = []
        while True:
            work = BatchWork(self.ledger, self.catalogue)
            if prepared.contacts is not None:
                work.prefetched_contacts = prepared.contacts.result()
            try:
                apply_commands(commands, work)
            except PoisonCommand as poison:
                self.ledger.evict([account_uuid(a) for a in work.accounts])
                log.error(
                    "command_failed_dead_lettering",
                    topic=prepared.tp.topic,
                    partition=prepared.tp.partition,
                    command=type(poison.command).__name__,
                    error=str(poison),
                )
                commands = [c for c in commands if c is not poison.command]
                refused.append(Rejection(origins_of(poison.command), str(poison)))
                continue
            work.rejections[:0] = refused
            return work

    def _apply_and_save(self, prepared: _Prepared) -> None:
        """Apply to the aggregates, publish dead letters, and start the save.

        Only called when no save is in flight: the aggregates are current.
        """
        assert self._in_flight is None
        tp, records, batch = prepared.tp, prepared.records, prepared.batch
        commands = prepared.commands
        known = prepared.lookup.result()
        if known:  # re-mapped only in the rare batch that carried stored duplicates
            batch.drop_known(known)
            commands = to_commands(batch.accepted)
        work = self._apply(prepared, commands)
        dead = [
            DeadLetterRow(
                r.record.topic,
                r.record.partition,
                r.record.offset,
                r.reason,
                r.record.key,
                r.record.value or b"",
            )
            for r in batch.refused
        ]
        by_offset = {r.offset: r for r in records} if work.rejections else {}
        for rejection in work.rejections:
            for origin in rejection.origins:
                record = by_offset[origin.offset]
                dead.append(
                    DeadLetterRow(
                        record.topic,
                        record.partition,
                        record.offset,
                        rejection.reason,
                        record.key,
                        record.value or b"",
                    )
                )
        self._publish_dead_letters(dead)  # flushed before the transaction starts
        tracking = Tracking(tracking_name(tp.topic, tp.partition), records[-1].offset)
        outcome = BatchOutcome(
            records=len(records),
            applied=work.applied_messages,
            duplicates=batch.duplicates,
            dead_letters=len(dead),
            accounts=len(work.accounts),
            topic=tp.topic,
            partition=tp.partition,
            first_offset=records[0].offset,
            last_offset=records[-1].offset,
        )
        save = self._worker.submit(save_batch, work, tracking, dead)
        self._in_flight = _InFlight(tp, records, work, outcome, prepared.started, save)

    def _settle(self) -> bool:
        """Wait for the save in flight, if any; False if it failed (and was rolled back).

        On failure nothing of the batch was stored: the aggregates it touched are
        evicted and its partition rewound to the stored position, to be redone.
        """
        with self._pipeline:
            flight, self._in_flight = self._in_flight, None
            if flight is None:
                return True
            return self._settle_flight(flight)

    def _settle_flight(self, flight: _InFlight) -> bool:
        tp, records, outcome = flight.tp, flight.records, flight.outcome
        try:
            flight.save.result()
        except (IntegrityError, OperationalError) as exc:  # collision, or lock timeout
            self.ledger.evict([account_uuid(a) for a in flight.work.accounts])
            stored = self._rewind(tp)
            where = {
                "topic": tp.topic,
                "partition": tp.partition,
                "first_offset": records[0].offset,
                "resume_after": stored,
            }
            error = str(exc).splitlines()[0]
            if isinstance(exc, IntegrityError):
                # Expected and handled: another writer (a closer, a consumer that took the
                # partition over) saved first. The constraint it hit is a detail.
                log.warning("redoing_batch_after_concurrent_write", **where)
                log.debug("concurrent_write_detail", **where, error=error)
            else:  # a lock timeout, or the database going away: worth the error text
                log.warning("redoing_batch_after_database_error", **where, error=error)
            # Nothing of this attempt was stored: the redo will count it.
            outcome.redo = True
            outcome.applied = outcome.duplicates = outcome.dead_letters = 0
            self._finished(outcome)
            return False
        elapsed = time.perf_counter() - flight.started
        BATCH_SECONDS.labels(tp.topic).observe(elapsed)
        MESSAGES.labels(tp.topic, "applied").inc(outcome.applied)
        MESSAGES.labels(tp.topic, "duplicate").inc(outcome.duplicates)
        MESSAGES.labels(tp.topic, "dead_letter").inc(outcome.dead_letters)
        DEAD_LETTERS.labels(tp.topic).inc(outcome.dead_letters)
        log.info(
            "batch_committed",
            topic=tp.topic,
            partition=tp.partition,
            first_offset=records[0].offset,
            last_offset=records[-1].offset,
            records=outcome.records,
            applied=outcome.applied,
            duplicates=outcome.duplicates,
            dead_letters=outcome.dead_letters,
            accounts=sorted(flight.work.accounts)[:20],
            account_count=outcome.accounts,
            ms=round(elapsed * 1000, 1),
        )
        self._finished(outcome)
        return True

    def _finished(self, outcome: BatchOutcome) -> None:
        self._settled.append(outcome)
        if self.on_batch:
            self.on_batch(outcome)

    def _discard(self, prepared: _Prepared) -> None:
        """A batch prepared while the save before it failed: never applied, redone later."""
        tp, records = prepared.tp, prepared.records
        stored = self._rewind(tp)
        log.warning(
            "prepared_batch_discarded",
            topic=tp.topic,
            partition=tp.partition,
            first_offset=records[0].offset,
            resume_after=stored,
        )
        self._finished(
            BatchOutcome(
                records=len(records),
                redo=True,
                discarded=True,
                topic=tp.topic,
                partition=tp.partition,
                first_offset=records[0].offset,
                last_offset=records[-1].offset,
            )
        )

    def _rewind(self, tp: TopicPartition) -> int | None:
        """Seek to the stored position (if the partition is still ours); returns it."""
        stored = self.stored_position(tp)
        if tp in self.consumer.assignment():
            self.consumer.seek(tp, 0 if stored is None else stored + 1)
        return stored

    def _publish_dead_letters(self, dead: Sequence[DeadLetterRow]) -> None:
        if not dead:
            return
        for row in dead:
            record = Record(row.topic, row.partition, row.offset, row.key, row.payload)
            self.producer.send(
                self.dead_letter_topic,
                key=row.key,
                value=dead_letter_message(record, row.reason),
                headers=[("reason", row.reason.encode()[:512])],
            )
            log.warning(
                "dead_lettered",
                topic=row.topic,
                partition=row.partition,
                offset=row.offset,
                reason=row.reason,
            )
        self.producer.flush()

    def _report_lag(self, partitions: list[TopicPartition]) -> None:
        """Kafka group offsets are for lag dashboards only; positions live in PostgreSQL."""
        self._lag_reported = time.monotonic()
        try:
            ends = self.consumer.end_offsets(partitions)
            for tp in partitions:
                position = self.consumer.position(tp)
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, ends[tp] - position))
            self.consumer.commit_async()
        except Exception as exc:  # lag reporting must never stop billing
            log.debug("lag_report_failed", error=str(exc))

    def caught_up(self) -> bool:
        """No save in flight, and every assigned partition's stored position has
        reached its end offset."""
        assigned = list(self.consumer.assignment())
        if not assigned or self._held_back or self._in_flight is not None:
            return False
        ends = self.consumer.end_offsets(assigned)
        return all(self._next_offset(tp) >= end for tp, end in ends.items())

    def _next_offset(self, tp: TopicPartition) -> int:
        stored = self.stored_position(tp)
        return 0 if stored is None else stored + 1

    def drain(self, timeout: float = 60.0) -> list[BatchOutcome]:
        """Poll until caught up (demo, tests, benchmarks); raise if the deadline passes."""
        deadline = time.monotonic() + timeout
        outcomes: list[BatchOutcome] = []
        while True:
            outcomes.extend(self.poll_once())
            if self.caught_up():
                return outcomes
            if time.monotonic() > deadline:
                raise TimeoutError(f"consumer not caught up after {timeout}s")

    def close(self) -> None:
        try:
            self._settle()  # the batch in flight is finished, never abandoned
        finally:
            self._worker.shutdown(wait=True)
            self.producer.flush()
            self.producer.close()
            self.consumer.close()
            self.ledger.close()
            log.info("consumer_stopped")


class _SeekToStoredPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: LedgerConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self.owner._settle()  # finish the save in flight while the partitions are still ours
        log.info("partitions_revoked", partitions=[f"{tp.topic}:{tp.partition}" for tp in revoked])

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self.owner.seek_to_stored(list(assigned))
