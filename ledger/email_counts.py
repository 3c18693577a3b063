"""A batch of sent emails counted per billing month: the one loop of the hot path.

Both billing models count a batch the same way: platform and custom-SMTP emails
per month (a calendar month for email plans, an allowance month for contacts
plans), and the latest send time as the event's business time. The loop runs
once per email, so it does the least per email: it keys by the local *day*
(no call per email), and the few distinct days are mapped to their month
afterwards by ``month_of``, which is where each model's calendar lives.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, Protocol, TypeVar

from ledger.periods import NaiveDatetime, zone

Route = Literal["platform", "custom_smtp"]


class SentEmailLike(Protocol):
    """What the aggregates read of an email (a command item, or a test's plain value)."""

    @property
    def sent_at(self) -> datetime: ...

    @property
    def route(self) -> Route: ...


E = TypeVar("E", bound=SentEmailLike)
K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class MonthCount:
    """A batch's emails of one month: ``[plan index, platform, custom SMTP]`` runs in
    arrival order (one run unless the plan changed), and the latest send time."""

    runs: list[list[int]]
    at: datetime

    @property
    def platform(self) -> int:
        return sum(run[1] for run in self.runs)

    @property
    def custom_smtp(self) -> int:
        return sum(run[2] for run in self.runs)


def count_by_month(
    emails: Sequence[SentEmailLike], tz: str, month_of: Callable[[date], K]
) -> dict[K, MonthCount]:
    """Emails per month of their local send day (one run each, plan index 0)."""
    local_zone = zone(tz)
    days: dict[date, list[Any]] = {}
    for email in emails:
        sent_at = email.sent_at
        if sent_at.utcoffset() is None:
            raise NaiveDatetime()
        day = sent_at.astimezone(local_zone).date()
        count = days.get(day)
        if count is None:
            count = days[day] = [0, 0, sent_at]
        count[email.route != "platform"] += 1
        if sent_at > count[2]:  # noqa: PLR1730 (per email: no call)
            count[2] = sent_at
    months: dict[K, MonthCount] = {}
    for day, (platform, smtp, at) in days.items():
        key = month_of(day)
        group = months.get(key)
        if group is None:
            months[key] = MonthCount([[0, platform, smtp]], at)
        else:
            group.runs[0][1] += platform
            group.runs[0][2] += smtp
            group.at = max(group.at, at)
    return months


def count_runs_by_month(
    emails: Sequence[SentEmailLike],
    tz: str,
    month_of: Callable[[date], K],
    plan_index_at: Callable[[datetime], int],
) -> dict[K, MonthCount]:
    """As :func:`count_by_month`, in runs of one plan in arrival order (after a plan
    change), as recording the emails one at a time would segment each month."""
    local_zone = zone(tz)
    months: dict[K, MonthCount] = {}
    for email in emails:
        sent_at = email.sent_at
        if sent_at.utcoffset() is None:
            raise NaiveDatetime()
        key = month_of(sent_at.astimezone(local_zone).date())
        index = plan_index_at(sent_at)
        group = months.get(key)
        if group is None:
            group = months[key] = MonthCount([[index, 0, 0]], sent_at)
        run = group.runs[-1]
        if run[0] != index:
            run = [index, 0, 0]
            group.runs.append(run)
        run[1 + (email.route != "platform")] += 1
        if sent_at > group.at:  # noqa: PLR1730 (per email: no call)
            group.at = sent_at
    return months


def split_by_month(
    emails: Sequence[E], tz: str, month_of: Callable[[date], K], months: Sequence[K]
) -> list[Sequence[E]]:
    """The emails of each month, in ``months`` order; a batch within one month is itself."""
    if len(months) == 1:  # the common case: no second pass over the emails
        return [emails]
    local_zone = zone(tz)
    parts: dict[K, list[E]] = {key: [] for key in months}
    for email in emails:
        parts[month_of(email.sent_at.astimezone(local_zone).date())].append(email)
    return [parts[key] for key in months]
