"""One place that wires everything: settings -> infrastructure -> services.

Nothing runs at import time. ``bootstrap()`` returns a :class:`Services`
whose parts (consumer, read models' pass, status publisher, closer) the
CLI starts in one process or one role per process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
import structlog
from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment

from ledger.application import Ledger
from ledger.entrypoints.embedded import (
    EmbeddedBroker,
    EmbeddedPostgres,
    configured_or_embedded_postgres,
    start_broker,
)
from ledger.entrypoints.settings import Settings, postgres_env
from ledger.plans import Catalogue
from projections.balances import BalancesProjection
from projections.base import TableProjection
from projections.contacts import ContactsProjection
from projections.documents import DocumentsProjection
from projections.notices import NoticesProjection
from projections.payment_queries import PaymentReports
from projections.payments import PaymentsProjection
from projections.positions import tracking_table
from projections.queries import Reports
from projections.read_models import ReadModels
from projections.runner import Follower
from projections.usage import UsageProjection

# Kafka, the consumers and the command side are imported by the parts that use
# them: a command that reads or closes does not pay for the consumer's imports.
if TYPE_CHECKING:
    from kafka import KafkaProducer, TopicPartition

    from commands.closing import Progress
    from commands.collecting import Collected
    from commands.store import LedgerRecorder
    from consumers.positions import Positions
    from consumers.runner import LedgerConsumer
    from ledger.documents import Document
    from projections.chain_heads import ChainHeadPublisher

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
PROJECTIONS: tuple[type[TableProjection[Any]], ...] = (
    BalancesProjection,
    UsageProjection,
    DocumentsProjection,
    ContactsProjection,
    PaymentsProjection,
    NoticesProjection,
)


#: Any constant shared by every ledger process (pg_advisory_lock takes a bigint).
SCHEMA_LOCK_KEY = 0x1ED6E5


@contextmanager
def schema_lock(database_url: str, env: dict[str, str]) -> Iterator[None]:
    """Create tables one process at a time (nothing to do where tables are not created).

    eventsourcing creates its tables with ``CREATE ... IF NOT EXISTS``, which
    is not safe to run concurrently in PostgreSQL ("tuple concurrently
    updated"): replicas started together would crash at start. A session
    advisory lock serialises it. (A replica that starts while others write may
    still meet a deadlock on its DDL; PostgreSQL then aborts one side: a batch
    that is redone, or the starting process, which exits and is restarted.)
    """
    if env.get("CREATE_TABLE") != "y":
        yield
        return
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))


@dataclass
class Services:
    settings: Settings
    database_url: str
    ledger: Ledger
    catalogue: Catalogue
    env: dict[str, str]
    clock: Clock
    kafka_bootstrap: str | None = None
    embedded_postgres: EmbeddedPostgres | None = None
    embedded_broker: EmbeddedBroker | None = None
    projections: dict[str, TableProjection[Any]] = field(default_factory=dict)
    projections_factory: PostgresFactory | None = None
    #: The producers the parts made (the status outbox's), closed with the services:
    #: one left open reconnects, and logs each failure, once the broker has stopped.
    producers: list[KafkaProducer] = field(default_factory=list)

    @property
    def kafka_config(self) -> dict[str, Any]:
        if self.kafka_bootstrap is None:
            raise RuntimeError("no Kafka configured for this command")
        return self.settings.kafka_config(self.kafka_bootstrap)

    def ensure_topics(self) -> None:
        from consumers.topics import ensure_topics

        ensure_topics(self.kafka_config, self.settings.all_topics(), self.settings.topic_partitions)

    def consumer(self, **kwargs: Any) -> LedgerConsumer:
        from consumers.batch import TopicRoles
        from consumers.messages import TOPIC_TYPES
        from consumers.runner import LedgerConsumer

        topics = self.settings.input_topics()
        roles = TopicRoles(
            by_topic={topic: TOPIC_TYPES[role] for role, topic in topics.items()},
            priority=frozenset({topics["accounts"]}),
            versioned=frozenset({topics["contact_changed"]}),
        )
        # The consumer gets its own Ledger: its cache holds the aggregates of its
        # partitions and is used without deep copies (a batch that fails to commit
        # evicts what it touched), which nothing else may share.
        with schema_lock(self.database_url, self.env):
            consumer_ledger = Ledger(env={**self.env, "DEEPCOPY_FROM_AGGREGATE_CACHE": "n"})
        return LedgerConsumer(
            ledger=consumer_ledger,
            catalogue=self.catalogue,
            kafka_config=self.kafka_config,
            roles=roles,
            group_id=self.settings.consumer_group,
            dead_letter_topic=self.settings.topic_dead_letter,
            max_records=self.settings.batch_max_records,
            **{
                "clock": self.clock,
                "max_future_skew": self.settings.max_future_skew,
                "park_max_age": self.settings.park_max_age,
                "gather_seconds": self.settings.batch_gather.total_seconds(),
                **kwargs,
            },
        )

    def projection(self, cls: type[TableProjection[Any]]) -> TableProjection[Any]:
        """The read models share one connection pool: the single pass writes them all
        in one transaction. Each keeps its own tracking table (``<name>_tracking``,
        as the library's factory names it)."""
        if cls.name not in self.projections:
            if self.projections_factory is None:
                self.projections_factory = PostgresFactory(Environment("projections", self.env))
            factory = self.projections_factory
            view = cls.view_class(
                datastore=factory.datastore, tracking_table_name=tracking_table(cls.name)
            )
            if factory.env_create_table():
                with schema_lock(self.database_url, self.env):
                    view.create_table()
            self.projections[cls.name] = cls(view=view)
        return self.projections[cls.name]

    def read_models(self, *, sole_work: bool = False) -> ReadModels:
        """The single pass that keeps every read model current (serve, catch-up, rebuild).

        ``sole_work``: no consumer runs in this process (a rebuild; ``serve``'s
        projections beside consumer processes, or alone). Each batch then runs
        with the cyclic collector paused, as a consumer process's do
        (consumers/process_tuning.py): a batch's decoded events are young
        objects freed by reference counting, and the collector would otherwise
        scan them and the aggregate cache again and again (measured on the
        rebuild benchmark: 15-20% of its time).
        """
        projections = [self.projection(cls) for cls in PROJECTIONS]
        if not sole_work:
            return ReadModels(self.ledger, projections)
        from consumers.process_tuning import collector_paused

        return ReadModels(self.ledger, projections, batch_scope=collector_paused)

    def replayed_read_models(self, schema: str) -> tuple[ReadModels, Callable[[], None]]:
        """Every read model, empty, in ``schema`` (which exists): what ``ledger audit
        verify`` replays the history into. The second value closes its pool."""
        from consumers.process_tuning import collector_paused

        factory = PostgresFactory(
            Environment("projections", {**self.env, "POSTGRES_SCHEMA": schema})
        )
        projections = []
        for cls in PROJECTIONS:
            view = cls.view_class(
                datastore=factory.datastore, tracking_table_name=tracking_table(cls.name)
            )
            view.create_table()
            projections.append(cls(view=view))
        # A whole history, as a rebuild reads it: larger batches than a live follower's.
        read_models = ReadModels(
            self.ledger, projections, batch_size=5000, batch_scope=collector_paused
        )
        return read_models, factory.datastore.close

    def status_publisher(self) -> Follower:
        from kafka import KafkaProducer

        from projections.status_publisher import (
            STATUS_TOPICS,
            AccountStatusPublisher,
            StatusTracking,
        )

        factory = PostgresFactory(Environment(AccountStatusPublisher.name, self.env))
        with schema_lock(self.database_url, self.env):
            tracking = factory.tracking_recorder(StatusTracking)
        assert isinstance(tracking, StatusTracking)
        producer = KafkaProducer(**self.kafka_config, acks="all", linger_ms=5)
        self.producers.append(producer)
        publisher = AccountStatusPublisher(producer, self.settings.topic_account_status, tracking)
        return Follower(self.ledger, publisher, tracking, topics=STATUS_TOPICS)

    def payments_outbox(self) -> Follower:
        """Collection requests, notices and suspensions, from stored history."""
        from kafka import KafkaProducer

        from projections.payments_outbox import (
            PAYMENTS_TOPICS,
            PaymentsOutbox,
            PaymentsOutboxTracking,
        )

        factory = PostgresFactory(Environment(PaymentsOutbox.name, self.env))
        with schema_lock(self.database_url, self.env):
            tracking = factory.tracking_recorder(PaymentsOutboxTracking)
        assert isinstance(tracking, PaymentsOutboxTracking)
        producer = KafkaProducer(**self.kafka_config, acks="all", linger_ms=5)
        self.producers.append(producer)
        outbox = PaymentsOutbox(
            producer,
            tracking,
            topic_collections=self.settings.topic_collections,
            topic_notices=self.settings.topic_notices,
            topic_account_status=self.settings.topic_account_status,
        )
        return Follower(self.ledger, outbox, tracking, topics=PAYMENTS_TOPICS)

    def chain_head_publisher(self) -> ChainHeadPublisher:
        from kafka import KafkaProducer

        from projections.chain_heads import ChainHeadPublisher

        producer = KafkaProducer(**self.kafka_config, acks="all", linger_ms=5)
        self.producers.append(producer)
        return ChainHeadPublisher(
            producer,
            self.settings.topic_audit,
            self.ledger.recorder,  # type: ignore[arg-type]
            self.settings.audit_head_interval.total_seconds(),
        )

    @property
    def store(self) -> LedgerRecorder:
        """The ledger's recorder with the write side's tables (dedupe keys, the hash
        chain, parked messages, contact versions): what the audit commands read."""
        from commands.store import LedgerRecorder

        recorder = self.ledger.process_recorder
        assert isinstance(recorder, LedgerRecorder)
        return recorder

    def reports(self) -> Reports:
        return Reports(
            self.projection(BalancesProjection).view,
            self.projection(UsageProjection).view,
            self.projection(DocumentsProjection).view,
            self.projection(ContactsProjection).view,
        )

    def payment_reports(self) -> PaymentReports:
        # Any view of the read models' schema reads them all (they share one).
        return PaymentReports(self.projection(PaymentsProjection).view)

    def close_periods(
        self,
        as_of: datetime | None = None,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> list[Document]:
        from commands.closing import close_periods
        from commands.models import ClosePeriods

        command = ClosePeriods(as_of=as_of or self.clock(), grace=self.settings.close_grace)
        return close_periods(
            self.ledger,
            command,
            dry_run=dry_run,
            progress=progress,
            policy=self.catalogue.dunning,
        )

    def collect(self, now: datetime | None = None, *, every_account: bool = False) -> Collected:
        """The collection and dunning scan (``ledger collect``, serve's scheduler)."""
        from commands.collecting import collect
        from ledger.payments.chasing import require_policy

        policy = require_policy(self.catalogue.dunning)
        return collect(self.ledger, now or self.clock(), policy, every_account=every_account)

    def check_close(self, as_of: datetime) -> None:
        """Refuse a requested close time later than the clock (plus the skew) allows."""
        from commands.closing import check_close
        from commands.models import ClosePeriods

        command = ClosePeriods(as_of=as_of, grace=self.settings.close_grace)
        check_close(command, self.clock(), self.settings.max_future_skew)

    def database_read_only(self) -> bool:
        """Whether this session cannot write (a standby, or ``default_transaction_read_only``)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute("SHOW transaction_read_only").fetchone()
        return row is not None and row[0] == "on"

    def pay_proforma(
        self, account_id: str, proforma_id: str, at: datetime | None = None
    ) -> Document:
        from commands.closing import pay_proforma
        from commands.models import PayProforma

        command = PayProforma(account_id=account_id, proforma_id=proforma_id, at=at or self.clock())
        return pay_proforma(self.ledger, command, self.catalogue.dunning)

    def positions(self) -> Positions:
        """Stored Kafka positions checked against the broker's logs (``ledger positions``)."""
        from consumers.log_probe import LogProbe
        from consumers.positions import Positions

        return Positions(self.ledger, LogProbe(self.kafka_config), self.clock)

    def input_partitions(self, positions: Positions) -> list[TopicPartition]:
        return positions.all_partitions(sorted(self.settings.input_topics().values()))

    def close_embedded_logs(self) -> int:
        """Before the embedded broker stops (its log goes with it): record, per
        partition, how many records it held that were not consumed. Returns the total."""
        if self.embedded_broker is None:
            return 0
        from consumers.positions import load_partition_log

        positions = self.positions()
        lost = 0
        try:
            checked = positions.check(self.input_partitions(positions), adopt=False, exact=True)
            for tp, position in checked.items():
                partition_log = load_partition_log(self.ledger, tp.topic, tp.partition)
                if partition_log is None or position.status == "new_log":
                    continue
                unconsumed = partition_log.close(
                    stored=position.stored, log_end=position.log_end, at=self.clock()
                )
                self.ledger.save(partition_log)
                lost += unconsumed
                if unconsumed:
                    log.error(
                        "embedded_broker_records_lost",
                        topic=tp.topic,
                        partition=tp.partition,
                        unconsumed=unconsumed,
                        detail="published to the embedded (in-memory) broker, not consumed"
                        " before it stopped: gone with its memory",
                    )
        finally:
            positions.probe.close()
        log.info("embedded_broker_logs_closed", unconsumed=lost)
        return lost

    def close(self) -> None:
        for producer in self.producers:
            producer.close(timeout=5)
        self.ledger.close()
        if self.projections_factory is not None:
            self.projections_factory.close()
        if self.embedded_broker:
            self.embedded_broker.stop()


def utc_now() -> datetime:
    return datetime.now(UTC)


def bootstrap(
    settings: Settings | None = None,
    *,
    need_kafka: bool = True,
    clock: Clock = utc_now,
    announce: Callable[[str], None] | None = None,
    create_tables: bool = True,
) -> Services:
    """``create_tables=False`` in processes started by one that created them
    (consumer processes): ``CREATE INDEX IF NOT EXISTS`` takes a share lock even
    when the index exists, and with a sibling's batch writing, that deadlocks."""
    settings = settings or Settings()
    database_url, embedded_postgres = configured_or_embedded_postgres(
        settings.database_url, settings.home, announce
    )
    embedded_broker = None
    kafka_bootstrap = settings.kafka_bootstrap
    if need_kafka and kafka_bootstrap is None:
        embedded_broker = start_broker()
        kafka_bootstrap = embedded_broker.bootstrap
        if announce:
            announce(
                "LEDGER_KAFKA_BOOTSTRAP is unset: using an embedded in-memory broker"
                f" at {kafka_bootstrap} (its log lives in memory: records published to it"
                " and not consumed when it stops are lost; use a real Kafka beyond a demo)"
            )
    env = postgres_env(
        database_url, settings.database_schema, settings.pg_pool_size, create_tables=create_tables
    )
    with schema_lock(database_url, env):
        ledger = Ledger(env=env)
    return Services(
        settings=settings,
        database_url=database_url,
        ledger=ledger,
        catalogue=Catalogue.load(settings.plans_dir),
        env=env,
        clock=clock,
        kafka_bootstrap=kafka_bootstrap,
        embedded_postgres=embedded_postgres,
        embedded_broker=embedded_broker,
    )
