"""The live benchmark's arithmetic, apart from its processes: when the poller first
saw each stored event in a projection, percentiles, and the lag's trend."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass
class Sightings:
    """One account's projection row as the poller saw it change: a value that only
    grows (the balance row's version, the usage row's email count) and when each
    value was first seen. Only changes are kept, so a run's worth stays small."""

    values: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def saw(self, value: int, at: float) -> None:
        if not self.values or value > self.values[-1]:
            self.values.append(value)
            self.times.append(at)

    def first_reaching(self, value: int) -> float | None:
        """When the row was first seen at ``value`` or beyond (None: never)."""
        index = bisect_left(self.values, value)
        return self.times[index] if index < len(self.times) else None


@dataclass(frozen=True)
class StoredBatch:
    """One stored ``EmailsRecorded`` event: its account, version, recording time
    (the event's timestamp), the event time of its newest email, and the account's
    emails billed up to and including it."""

    account: str
    version: int
    recorded_at: float
    newest_email_at: float
    emails_so_far: int


def emails_so_far(counts: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """Emails per (account, event version) -> each account's running total by version:
    what its usage row counts once that event is projected."""
    running: dict[tuple[str, int], int] = {}
    totals: dict[str, int] = {}
    for account, version in sorted(counts):
        totals[account] = totals.get(account, 0) + counts[account, version]
        running[account, version] = totals[account]
    return running


def seen(
    batch: StoredBatch, balances: dict[str, Sightings], usage: dict[str, Sightings]
) -> tuple[float, float] | None:
    """When the event's balance row (at its version) and its usage row (at the
    account's running count) were first seen; None if either never was."""
    empty = Sightings()
    balance_seen = balances.get(batch.account, empty).first_reaching(batch.version)
    usage_seen = usage.get(batch.account, empty).first_reaching(batch.emails_so_far)
    if balance_seen is None or usage_seen is None:
        return None
    return balance_seen, usage_seen


def percentile(values: Sequence[float], percent: float) -> float:
    """Nearest rank: the smallest value with at least ``percent`` % of them at or below it."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x: seconds of lag gained per second of run."""
    if len(points) < 2:
        raise ValueError("a slope needs two points")
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        raise ValueError("a slope needs two distinct x")
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def by_window(points: Iterable[tuple[float, float]], seconds: float) -> list[list[float]]:
    """The lags grouped by ``seconds``-long windows of x (from 0), in order."""
    windows: dict[int, list[float]] = {}
    for x, y in points:
        windows.setdefault(int(x // seconds), []).append(y)
    return [windows.get(i, []) for i in range(max(windows, default=-1) + 1)]
