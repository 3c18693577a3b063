"""What a partition's log is and where it starts and ends, asked of the broker.

Two answers the consumer's own calls do not give reliably:

- **Which log**: the Kafka topic id (a UUID given when the topic is created)
  tells one log from another one under the same name: a topic recreated, or
  an embedded broker restarted with nothing in memory.
- **The true end**: the embedded Tansu broker answers a ListOffsets request
  with the *last record batch's first offset + 1*, not the offset after the
  last record (100 records sent as one batch: "end = 1"). A consumer at
  offset 100 would look "beyond the end" and a lag of 99 records would look
  like 0. So where the answer is not beyond doubt (the next offset to read is
  at or past the reported end), the probe reads the log's last batch and
  takes the offset after its last record. On Apache Kafka the reported end
  is exact: a next offset *equal* to it is simply caught up and is not probed
  (a probe there could wait on a transaction marker); only one *past* it is,
  which on Kafka means a position taken in another log.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import OffsetOutOfRangeError

from ledger.input_logs import UNNAMED_LOG

ZERO_UUID = UUID(int=0)

#: How long the probe waits for a partition's last batch.
PROBE_TIMEOUT_SECONDS = 3.0


class LogProbe:
    """A group-less consumer and an admin client, for looking only (never for consuming)."""

    def __init__(self, kafka_config: dict[str, Any]) -> None:
        self.kafka_config = kafka_config
        self._admin: KafkaAdminClient | None = None
        self._consumer: KafkaConsumer | None = None
        self._tansu: bool | None = None
        self._under_reports: bool | None = None
        #: Partitions whose end the last ``bounds`` call could not make exact.
        self.unverified: set[TopicPartition] = set()

    @property
    def admin(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(**self.kafka_config)
        return self._admin

    @property
    def consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                **self.kafka_config,
                enable_auto_commit=False,
                auto_offset_reset="none",
                max_poll_records=1_000_000,  # a last batch may hold many thousands
            )
        return self._consumer

    def log_ids(self, topics: Iterable[str]) -> dict[str, str]:
        """Topic name -> the id of its current log (``UNNAMED_LOG`` if the broker names
        none). A topic the broker answers with an error (unknown for now, not
        authorised) is left out: unknown is not "new"."""
        wanted = sorted(set(topics))
        ids: dict[str, str] = {}
        for described in self.admin.describe_topics(wanted):
            if described.get("error_code", 0) != 0 or described.get("name") not in wanted:
                continue
            topic_id = described.get("topic_id")
            unnamed = topic_id in (None, ZERO_UUID, str(ZERO_UUID))
            ids[described["name"]] = UNNAMED_LOG if unnamed else str(topic_id)
        return ids

    @property
    def broker_is_tansu(self) -> bool:
        """Whether the broker is Tansu (the embedded one): it names its cluster so."""
        if self._tansu is None:
            cluster_id = str(self.admin.describe_cluster().get("cluster_id") or "")
            self._tansu = cluster_id.startswith("tansu")
        return self._tansu

    @property
    def under_reports(self) -> bool:
        """Whether this broker reports less than a log's end (Tansu does; Kafka doesn't)."""
        if self._under_reports is None:
            self._under_reports = self.broker_is_tansu
        return self._under_reports

    def partitions(self, topic: str) -> list[TopicPartition]:
        found = self.consumer.partitions_for_topic(topic) or set()
        return [TopicPartition(topic, p) for p in sorted(found)]

    def bounds(
        self,
        partitions: Iterable[TopicPartition],
        reading_from: Mapping[TopicPartition, int],
        *,
        exact: bool = False,
    ) -> dict[TopicPartition, tuple[int, int]]:
        """(log start, log end) of each partition; ``reading_from`` holds the next
        offset the ledger would read, where known: the end is made exact wherever
        that offset is at or past the reported end (``exact``: everywhere, for
        counting what is left). A partition whose end could not be made exact is
        in ``unverified`` afterwards."""
        wanted = list(partitions)
        self.unverified = set()
        if not wanted:
            return {}
        starts, ends = self._offsets(wanted)
        doubtful = {
            tp: end
            for tp, end in ends.items()
            if end > 0
            and (
                reading_from.get(tp, 0) > end
                or ((exact or reading_from.get(tp, 0) == end) and self.under_reports)
            )
        }
        true_ends = self._true_ends(doubtful, starts)
        if any(true_ends[tp] > end for tp, end in doubtful.items()):
            self._under_reports = True
        ends.update(true_ends)
        return {tp: (starts[tp], ends[tp]) for tp in wanted}

    def _offsets(
        self, wanted: list[TopicPartition]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """Beginning and end offsets. kafka-python leaves out (KeyError) a partition
        whose leader its metadata does not know yet: refresh and ask again."""
        for attempt in range(5):
            try:
                return self.consumer.beginning_offsets(wanted), self.consumer.end_offsets(wanted)
            except KeyError:
                if attempt == 4:
                    raise
                for topic in {tp.topic for tp in wanted}:
                    self.consumer.partitions_for_topic(topic)
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    def _true_ends(
        self, reported: Mapping[TopicPartition, int], starts: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        found = dict(reported)
        # An emptied log (retention) has no record before its end: nothing to read.
        readable = {tp: end for tp, end in reported.items() if end - 1 >= starts[tp]}
        if not readable:
            return found
        consumer = self.consumer
        consumer.assign(list(readable))
        for tp, end in readable.items():
            consumer.seek(tp, end - 1)  # the first offset of the last batch, on Tansu
        waiting = set(readable)
        deadline = time.monotonic() + PROBE_TIMEOUT_SECONDS
        # A fetch at a batch's first offset returns the whole batch, and one poll hands
        # it over (max_poll_records is high): a partition is done once it gave records.
        while waiting and time.monotonic() < deadline:
            try:
                polled = consumer.poll(timeout_ms=100)
            except OffsetOutOfRangeError:  # the log was cut meanwhile: left unverified
                break
            for tp, records in polled.items():
                if records:
                    found[tp] = max(found[tp], records[-1].offset + 1)
                    waiting.discard(tp)
        consumer.assign([])
        self.unverified |= waiting
        return found

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        if self._admin is not None:
            self._admin.close()
