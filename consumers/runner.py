"""The consumer loop: Kafka records in, one PostgreSQL transaction per partition batch.

Exactly-once effect, step by step (``docs/exactly-once.md``):

1. On every partition assignment, and every few seconds after, check the
   position stored in PostgreSQL against the broker's log
   (``consumers/positions.py``): the position is kept per log (the topic id
   is in the tracking name), a new log is read from its start, and a position
   outside its log holds the partition until an operator resets it. Then seek
   to it; Kafka's committed offsets are for lag monitoring only, and the
   consumer never lets kafka-python reset a position on its own
   (``auto_offset_reset="none"``).
2. Decode and validate each record (pure), drop duplicates within the batch and
   those whose CloudEvent ``(source, id)`` is already in ``ledger_dedupe``.
3. Map to commands, apply them to aggregates (one event per account and billing
   month per batch).
4. Publish dead letters (refused records) to the dead-letter topic and flush:
   network I/O happens before, never inside, the database transaction.
   Records for an account that is not open yet are parked instead
   (``consumers/parking.py``), and re-driven when it opens.
5. Commit events + tracking + dedupe keys + dead-letter rows + parked rows in
   one transaction. If it collides (the position or a dedupe key or an aggregate
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

import contextlib
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
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from eventsourcing.persistence import IntegrityError, OperationalError, Tracking
from kafka import KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import OffsetOutOfRangeError

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
from consumers.group_membership import group_consumer
from consumers.log_probe import LogProbe
from consumers.mapping import to_commands
from consumers.messages import Accepted, Record, RecordLike, Refused, decode
from consumers.metrics import BATCH_SECONDS, CONSUMER_LAG, DEAD_LETTERS, MESSAGES, PARTITION_HELD
from consumers.parking import ParkedFacts, parked_rows
from consumers.positions import PartitionPosition, Positions, stored_next
from ledger.application import Ledger
from ledger.opening import account_uuid
from ledger.plans import Catalogue

log = structlog.get_logger(__name__)


#: Poll timeout while a save is in flight: if no records come this soon, the
#: consumer settles the save instead of idling (keeps ``drain`` prompt).
IN_FLIGHT_POLL_MS = 20

#: How often every assigned partition's position is checked against its log
#: (a held partition is released this soon after an operator's reset).
POSITION_CHECK_SECONDS = 5.0

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
    #: Facts for accounts not open yet, kept in ``ledger_parked``.
    parked: int = 0
    accounts: int = 0
    #: Nothing of the batch was stored; its records are consumed again.
    redo: bool = False
    #: Redone without being applied: prepared while the save before it failed.
    discarded: bool = False
    #: A re-drive of parked facts (``consumers/parking.py``), not a consumed batch.
    redriven: bool = False
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
    #: The latest event time accepted (the consumer's clock plus the allowed skew).
    latest_time: datetime
    accepted: list[Accepted] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    duplicates: int = 0

    #: The dedupe key of each accepted message, in the same order.
    keys: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        seen: set[tuple[str, str]] = set()
        accepted_types, latest_time = self.accepted_types, self.latest_time
        for record in self.records:
            result = decode(record, accepted_types, latest_time=latest_time)
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
        max_future_skew: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_records: int = 20000,
        poll_timeout_ms: int = 200,
        on_batch: Callable[[BatchOutcome], None] | None = None,
        park_max_age: timedelta = timedelta(days=7),
    ) -> None:
        self.ledger = ledger
        # Facts dated later than clock + skew are refused (``decode``'s ``latest_time``).
        self.clock = clock
        self.max_future_skew = max_future_skew
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
        probe = LogProbe(kafka_config)
        self.consumer = group_consumer(
            kafka_config,
            group_id,
            probe,
            # Every position is set by this consumer (seek); one outside its log
            # raises instead of being moved silently (positions are checked first).
            auto_offset_reset="none",
            max_poll_interval_ms=60000,
            # One fetch per partition should hold a whole batch (~300-500 bytes a
            # record): a poll then hands over one full-sized batch per partition.
            max_partition_fetch_bytes=partition_fetch_bytes,
            fetch_max_bytes=max(32 * 1024 * 1024, 4 * partition_fetch_bytes),
        )
        self.producer = KafkaProducer(**kafka_config, acks="all", linger_ms=5)
        self.positions = Positions(ledger, probe, clock)
        self.consumer.subscribe(roles.topics, listener=_SeekToStoredPositions(self))
        #: Assigned partitions checked against their logs and read: where they stand.
        self._checked: dict[TopicPartition, PartitionPosition] = {}
        #: Assigned, not checked yet (paused until they are).
        self._unchecked: set[TopicPartition] = set()
        #: Assigned and held: the stored position is outside the log (paused).
        self._held: dict[TopicPartition, PartitionPosition] = {}
        self._held_back: dict[TopicPartition, int] = {}
        self._positions_checked = 0.0
        _shorten_switch_interval()
        # One worker, so saves and dedupe lookups run one at a time, in the order submitted.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-db")
        self._in_flight: _InFlight | None = None
        self._settled: list[BatchOutcome] = []
        # Rebalance callbacks run on kafka-python's IO thread: they settle the save
        # in flight under this lock, never in the middle of this thread's doing so.
        self._pipeline = threading.RLock()
        self.parking = ParkedFacts(self, clock=clock, max_age=park_max_age)

    # ------------------------------------------------------------------ positions

    def stored_position(self, tp: TopicPartition) -> int | None:
        """The last offset applied of the partition (in the log it reads now)."""
        checked = self._checked.get(tp) or self._held.get(tp)
        if checked is None:
            return None
        position: int | None = self.recorder.max_tracking_id(checked.tracking_name)
        return position

    def _on_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        """A new assignment: nothing is applied until each partition is checked.

        Runs in a rebalance callback: no broker calls here. Each partition is
        set to the position PostgreSQL holds for it; records fetched before
        :meth:`_check_positions` has compared that position with its log are
        dropped, and the check seeks back (or holds the partition). Pausing
        them instead was seen to leave a partition kept across a rebalance
        never fetched again from the embedded broker.
        """
        # A save in flight must not race the check: its outcome moves the stored position.
        self._settle()
        for tp in {*self._checked, *self._held, *self._unchecked} - set(partitions):
            # Another member reports these now: no stale lag or hold from this one.
            for gauge in (CONSUMER_LAG, PARTITION_HELD):
                with contextlib.suppress(KeyError):
                    gauge.remove(tp.topic, str(tp.partition))
        self._checked, self._held = {}, {}
        self._unchecked = set(partitions)
        for tp in partitions:
            # Where it stood, as far as PostgreSQL knows without asking the broker.
            self.consumer.seek(tp, stored_next(self.ledger, tp.topic, tp.partition))
            log.info("partition_assigned", topic=tp.topic, partition=tp.partition)
        # Usage waits until the account facts present at assignment are applied,
        # so an email is not parked or dead-lettered for an account whose opening is queued.
        priority = [tp for tp in partitions if tp.topic in self.roles.priority]
        others = [tp for tp in partitions if tp.topic not in self.roles.priority]
        self._held_back = {tp: -1 for tp in priority} if priority and others else {}
        self._update_pauses()

    def _update_pauses(self) -> None:
        assigned = self.consumer.assignment()
        wanted = set(self._held)
        if self._held_back:
            wanted |= {tp for tp in assigned if tp.topic not in self.roles.priority}
        wanted &= assigned
        paused = set(self.consumer.paused())
        if wanted - paused:
            self.consumer.pause(*(wanted - paused))
        if paused - wanted:
            self.consumer.resume(*(paused - wanted))

    def _check_positions(self, *, everything: bool = False) -> None:
        """Compare stored positions with the broker's logs; seek, hold or release.

        New assignments are checked at once; every partition (held ones too: an
        operator may have reset one) every ``POSITION_CHECK_SECONDS``.
        """
        assigned = self.consumer.assignment()
        self._unchecked &= assigned
        wanted = set(assigned) if everything else set(self._unchecked)
        if not wanted:
            return
        with self._pipeline:
            self._settle()  # the stored positions must be final before they are compared
        self._positions_checked = time.monotonic()
        checked = self.positions.check(sorted(wanted))
        for tp, found in checked.items():
            before = self._checked.get(tp) or self._held.get(tp)
            position = found  # a hold is in the history: it lasts until a reset
            moved = (
                tp in self._unchecked
                or before is None
                or before.held
                or before.tracking_name != position.tracking_name
            )
            self._unchecked.discard(tp)
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(position.lag)
            PARTITION_HELD.labels(tp.topic, str(tp.partition)).set(1 if position.held else 0)
            if position.held:
                self._checked.pop(tp, None)
                # Usage no longer waits for a held accounts partition: what comes
                # before its account is parked.
                self._held_back.pop(tp, None)
                if before is None or not before.held or before.reason != position.reason:
                    log.error(
                        "partition_held",
                        topic=tp.topic,
                        partition=tp.partition,
                        reason=position.reason,
                        stored=position.stored,
                        log_start=position.log_start,
                        log_end=position.log_end,
                        resolve="ledger positions reset TOPIC PARTITION --to ... --reason ...",
                    )
                self._held[tp] = position
                continue
            self._held.pop(tp, None)
            self._checked[tp] = position
            if moved:
                if self.consumer.position(tp) != position.next_offset:
                    self.consumer.seek(tp, position.next_offset)
                log.info(
                    "partition_reading",
                    topic=tp.topic,
                    partition=tp.partition,
                    log_id=position.log_id,
                    epoch=position.epoch,
                    resume_after=position.stored,
                    log_end=position.log_end,
                )
            if self._held_back.get(tp) == -1:
                self._held_back[tp] = position.log_end
        self._update_pauses()
        with contextlib.suppress(Exception):  # group offsets: for lag dashboards only
            self.consumer.commit_async()

    def _maybe_release(self) -> None:
        if not self._held_back or any(end < 0 for end in self._held_back.values()):
            return
        assigned = self.consumer.assignment()
        for tp, end in list(self._held_back.items()):
            # The consumer's own position counts too: a transaction marker or an
            # expired log can keep the stored position short of the end forever.
            reached = max(
                self._next_offset(tp), self.consumer.position(tp) if tp in assigned else 0
            )
            if tp not in assigned or tp in self._held or reached >= end:
                del self._held_back[tp]
        if not self._held_back:
            self._update_pauses()
            log.info("accounts_caught_up_resuming_usage")

    @property
    def positions_checked_at(self) -> float:
        """``time.monotonic()`` of the last position check."""
        return self._positions_checked

    @property
    def held_partitions(self) -> dict[TopicPartition, PartitionPosition]:
        return dict(self._held)

    @property
    def accounts_current(self) -> bool:
        """Whether every account fact this consumer can read is applied as far as it
        knows: nothing unchecked, held back or held on the accounts topic. Until then a
        fact waiting for its account is not given up on (its opening may be unread)."""
        return (
            not self._unchecked
            and not self._held_back
            and not any(tp.topic in self.roles.priority for tp in self._held)
        )

    # ------------------------------------------------------------------ loop

    def run(self, stop: threading.Event, drain_seconds: float = 0.0) -> None:
        """Poll until ``stop`` is set; the batch in flight is always finished first.

        ``drain_seconds``: after ``stop``, keep consuming until caught up, for at
        most this long. For the embedded broker, whose log dies with it: what was
        published before the stop is then billed, not lost.
        """
        log.info("consumer_started", topics=self.roles.topics)
        try:
            while not stop.is_set():
                self.poll_once()
            if drain_seconds > 0:
                try:
                    self.drain(timeout=drain_seconds)
                    log.info("consumer_drained_before_stop")
                except TimeoutError:
                    log.error("consumer_not_drained_before_stop", seconds=drain_seconds)
        finally:
            self.close()

    def poll_once(self) -> list[BatchOutcome]:
        with _collector_paused():
            return self._poll_once()

    def _poll_once(self) -> list[BatchOutcome]:
        due = time.monotonic() - self._positions_checked > POSITION_CHECK_SECONDS
        if self._unchecked or due:
            self._check_positions(everything=due)
        timeout_ms = self.poll_timeout_ms
        if self._in_flight is not None:
            timeout_ms = min(timeout_ms, IN_FLIGHT_POLL_MS)
        try:
            polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=self.max_records)
        except OffsetOutOfRangeError as exc:
            # The log no longer holds the position (e.g. retention deleted records
            # not read yet): check those partitions at once; they will be held.
            out_of_range = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            self._unchecked.update(out_of_range or self.consumer.assignment())
            self._update_pauses()
            polled = {}
        ordered = sorted(
            polled, key=lambda tp: (tp.topic not in self.roles.priority, tp.topic, tp.partition)
        )
        for tp in ordered:
            if tp not in self._checked:
                # Fetched before its position was checked (just assigned): never applied.
                # The check seeks it back to the stored position, or holds it.
                self._unchecked.add(tp)
                continue
            # kafka-python's records have the attributes a Record has: not copied.
            prepared = self._prepare(tp, polled[tp])  # overlaps the save in flight
            with self._pipeline:
                if self._settle():
                    self._apply_and_save(prepared)
                else:
                    self._discard(prepared)
        if not polled:
            self._settle()  # nothing to overlap with: finish the save in flight
        self._maybe_release()
        self.parking.maybe_sweep(idle=not polled)
        with self._pipeline:
            outcomes, self._settled = self._settled, []
        return outcomes

    @property
    def in_flight(self) -> bool:
        """Whether a batch's save is still running (its outcome comes with a later poll)."""
        return self._in_flight is not None

    def _prepare(self, tp: TopicPartition, records: Sequence[RecordLike]) -> _Prepared:
        """The pure part: decode, validate, drop in-batch duplicates, map to commands.

        Which keys are stored already is asked on the worker, behind the save in
        flight (so it sees that batch's keys), while this thread maps the batch.
        """
        started = time.perf_counter()
        latest_time = self.clock() + self.max_future_skew
        batch = PartitionBatch(records, self.roles.by_topic[tp.topic], latest_time)
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

    def _work_for(self, prepared: _Prepared) -> BatchWork:
        """Drop the stored duplicates, then apply (a batch, or a re-drive of parked facts)."""
        commands = prepared.commands
        known = prepared.lookup.result()
        if known:  # re-mapped only in the rare batch that carried stored duplicates
            prepared.batch.drop_known(known)
            commands = to_commands(prepared.batch.accepted)
        return self._apply(prepared, commands)

    def _apply_and_save(self, prepared: _Prepared) -> None:
        """Apply to the aggregates, publish dead letters, and start the save.

        Only called when no save is in flight: the aggregates are current.
        """
        assert self._in_flight is None
        tp, records, batch = prepared.tp, prepared.records, prepared.batch
        work = self._work_for(prepared)
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
        parked = parked_rows(records, work.parkings)
        if work.opened:
            self.parking.due = True  # facts parked for these accounts can be applied now
        self._publish_dead_letters(dead)  # flushed before the transaction starts
        tracking = Tracking(self._checked[tp].tracking_name, records[-1].offset)
        outcome = BatchOutcome(
            records=len(records),
            applied=work.applied_messages,
            duplicates=batch.duplicates,
            dead_letters=len(dead),
            parked=len(parked),
            accounts=len(work.accounts),
            topic=tp.topic,
            partition=tp.partition,
            first_offset=records[0].offset,
            last_offset=records[-1].offset,
        )
        save = self._worker.submit(save_batch, work, tracking, dead, parked)
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
            outcome.applied = outcome.duplicates = outcome.dead_letters = outcome.parked = 0
            self._finished(outcome)
            return False
        elapsed = time.perf_counter() - flight.started
        BATCH_SECONDS.labels(tp.topic).observe(elapsed)
        MESSAGES.labels(tp.topic, "applied").inc(outcome.applied)
        MESSAGES.labels(tp.topic, "duplicate").inc(outcome.duplicates)
        MESSAGES.labels(tp.topic, "dead_letter").inc(outcome.dead_letters)
        MESSAGES.labels(tp.topic, "parked").inc(outcome.parked)
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
            parked=outcome.parked,
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
        """Seek to the stored position (if the partition is still ours and read); returns it."""
        stored = self.stored_position(tp)
        if tp in self.consumer.assignment() and tp in self._checked:
            self.consumer.seek(tp, self._next_offset(tp))
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

    def caught_up(self) -> bool:
        """No save in flight, nothing held or unchecked, and every assigned
        partition's stored position has reached the end of its log (the true
        end: see ``consumers/log_probe.py``)."""
        assigned = list(self.consumer.assignment())
        if (
            not assigned
            or self._held_back
            or self._unchecked
            or self._held
            or self._in_flight is not None
        ):
            return False
        reading_from = {tp: self._next_offset(tp) for tp in assigned}
        bounds = self.positions.probe.bounds(assigned, reading_from)
        return all(reading_from[tp] >= end for tp, (_start, end) in bounds.items())

    def _next_offset(self, tp: TopicPartition) -> int:
        checked = self._checked.get(tp) or self._held.get(tp)
        if checked is None:
            return 0
        stored: int | None = self.recorder.max_tracking_id(checked.tracking_name)
        return checked.next_after(stored)

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
            self.positions.probe.close()
            self.ledger.close()
            log.info("consumer_stopped")


class _SeekToStoredPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: LedgerConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self.owner._settle()  # finish the save in flight while the partitions are still ours
        log.info("partitions_revoked", partitions=[f"{tp.topic}:{tp.partition}" for tp in revoked])

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self.owner._on_assigned(list(assigned))
