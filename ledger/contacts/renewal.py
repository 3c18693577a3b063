"""Anniversary billing periods: a subscription renews on the day it started.

A subscription has an *anchor*: the local date it started, in the account's
time zone (an IANA name, as in :mod:`ledger.periods`). Its n-th period starts
``n * months`` calendar months after the anchor (``month`` = 1, ``quarter`` =
3, ``half_year`` = 6, ``year`` = 12), on the anchor's day of the month, or on
the last day of that month when it is shorter. Periods are half-open date
ranges ``[start, end)``: ``end`` is the next period's start, and the instants
are local midnights (:meth:`RenewalPeriod.starts_at`).

Every start is computed **from the anchor**, never from the previous start.
Stepping from a clamped date would drift for good (Jan 31 -> Feb 28 -> Mar 28
-> ...); computing from the anchor returns to the anchor day as soon as the
month is long enough.

Anchors on the 29th-31st:

- 29th: renews on Feb 28 in common years, Feb 29 in leap years, the 29th in
  every other month.
- 30th: renews on Feb 28/29, the 30th in every other month.
- 31st: renews on Feb 28/29, on the 30th in April, June, September and
  November, the 31st in the other months: Jan 31 -> Feb 29 2028 -> Mar 31 ->
  Apr 30 -> May 31; quarterly Aug 31 -> Nov 30 -> Feb 28 -> May 31.
- An anchor of Feb 29 with a yearly period renews on Feb 28 in common years.

So periods differ in length by a few days (an anchor-31 February period is
Jan 31 -> Feb 28, 28 days; the next, Feb 28 -> Mar 31, is 31 days), and
anchors 29, 30 and 31 may share a renewal date in February. No period is
ever empty: distinct month offsets land in distinct calendar months.

*Allowance months* (:func:`allowance_months`): the email allowance stays
monthly whatever the billing period, so a quarter, half-year or year is split
at the anchor's *monthly* anniversaries. Those are exactly the monthly
periods of the same anchor, which is why they tile every longer period
exactly (a period boundary is itself a monthly anniversary).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal, get_args

from ledger.errors import LedgerError
from ledger.periods import local_date, zone

BillingPeriod = Literal["month", "quarter", "half_year", "year"]

#: Calendar months in each billing period.
PERIOD_MONTHS: dict[BillingPeriod, int] = {"month": 1, "quarter": 3, "half_year": 6, "year": 12}


class RenewalError(LedgerError):
    """A renewal-period question that has no answer."""


class UnknownBillingPeriod(RenewalError):
    def __init__(self, period: object) -> None:
        super().__init__(
            f"unknown billing period {period!r} (use one of {', '.join(get_args(BillingPeriod))})"
        )


class BeforeAnchor(RenewalError):
    def __init__(self, day: date, anchor: date) -> None:
        super().__init__(f"{day} is before the subscription started on {anchor}")


class NotAnAnniversaryPeriod(RenewalError):
    def __init__(self, anchor: date, start: date, end: date) -> None:
        super().__init__(
            f"[{start}, {end}) is not a renewal period of a subscription anchored {anchor}"
        )


def months_in(period: BillingPeriod) -> int:
    """Calendar months in a billing period; refuses anything else at runtime too."""
    try:
        return PERIOD_MONTHS[period]
    except KeyError:
        raise UnknownBillingPeriod(period) from None


def add_months(anchor: date, months: int) -> date:
    """The anchor's day ``months`` calendar months later, clamped to the month's last day."""
    year, month0 = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(anchor.day, last_day))


def period_start(anchor: date, period: BillingPeriod, n: int) -> date:
    """Start of the n-th period (n = 0 is the anchor), always computed from the anchor."""
    if n < 0:
        raise RenewalError(f"period numbers start at 0, got {n}")
    return add_months(anchor, n * months_in(period))


@dataclass(frozen=True, order=True, slots=True)
class RenewalPeriod:
    """Local dates ``[start, end)``: ``end`` is the next period's start (exclusive)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise RenewalError(f"a period must end after it starts: [{self.start}, {self.end})")

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def starts_at(self, tz: str) -> datetime:
        """Local midnight of ``start`` in ``tz``, as an aware UTC datetime."""
        return _midnight(self.start, tz)

    def ends_at(self, tz: str) -> datetime:
        """Exclusive end: local midnight of ``end``, the next period's start."""
        return _midnight(self.end, tz)

    def __str__(self) -> str:
        return f"{self.start}..{self.end}"


def _midnight(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone(tz)).astimezone(UTC)


def renewal_period(anchor: date, period: BillingPeriod, n: int) -> RenewalPeriod:
    """The n-th period of a subscription."""
    return RenewalPeriod(period_start(anchor, period, n), period_start(anchor, period, n + 1))


def period_number(anchor: date, period: BillingPeriod, day: date) -> int:
    """Which period (0-based) holds ``day``; a day before the anchor belongs to none."""
    if day < anchor:
        raise BeforeAnchor(day, anchor)
    elapsed = (day.year - anchor.year) * 12 + day.month - anchor.month
    n = elapsed // months_in(period)
    # Period n starts in a month at or before day's month; it may still start
    # later in that same month (anchor day > day's day), then day is in n - 1.
    # n >= 1 here, since period 0 starts on the anchor, which is <= day.
    if period_start(anchor, period, n) > day:
        n -= 1
    return n


def period_containing(anchor: date, period: BillingPeriod, day: date) -> RenewalPeriod:
    """The period whose local dates include ``day``."""
    return renewal_period(anchor, period, period_number(anchor, period, day))


def period_at(anchor: date, period: BillingPeriod, instant: datetime, tz: str) -> RenewalPeriod:
    """The period an instant falls in, judged by its local date in the account's zone."""
    return period_containing(anchor, period, local_date(instant, tz))


def periods_from(anchor: date, period: BillingPeriod, n: int = 0) -> Iterator[RenewalPeriod]:
    """Every period from the n-th on, without end."""
    while True:
        yield renewal_period(anchor, period, n)
        n += 1


def periods_between(
    anchor: date, period: BillingPeriod, since: date, until: date
) -> Iterator[RenewalPeriod]:
    """The periods that overlap the local dates ``[since, until)``, in order, unclipped.

    Days before the anchor belong to no period and are skipped, so a range
    that ends on or before the anchor yields nothing.
    """
    if until <= anchor or until <= since:
        return
    first = period_number(anchor, period, max(since, anchor))
    for renewal in periods_from(anchor, period, first):
        if renewal.start >= until:
            return
        yield renewal


def allowance_months(anchor: date, within: RenewalPeriod) -> tuple[RenewalPeriod, ...]:
    """Split a period into its allowance months: the anchor's monthly anniversaries in it.

    ``within`` must be a renewal period of ``anchor`` (of any length);
    the months are computed from the anchor, not from ``within.start``, so a
    quarter that starts on a clamped Apr 30 (anchor Jan 31) splits into
    Apr 30, May 31, Jun 30 and ends on Jul 31, exactly like the quarter.
    """
    if within.start < anchor:
        raise NotAnAnniversaryPeriod(anchor, within.start, within.end)
    first = period_number(anchor, "month", within.start)
    months: list[RenewalPeriod] = []
    for month in periods_from(anchor, "month", first):
        if month.start >= within.end:
            break
        months.append(month)
    if months[0].start != within.start or months[-1].end != within.end:
        raise NotAnAnniversaryPeriod(anchor, within.start, within.end)
    return tuple(months)
