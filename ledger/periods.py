"""Billing months: calendar months in the account's own time zone.

A month ``M`` of an account in zone ``Z`` is the half-open interval
``[00:00:00.000 on the 1st of M in Z, 00:00:00.000 on the 1st of M+1 in Z)``.
An email sent at 23:59:59.999 local time on the last day belongs to ``M``;
one sent a millisecond later belongs to ``M+1``. Daylight-saving changes do
not matter: boundaries are local midnights converted to instants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import TypeAdapter

from ledger.errors import LedgerError


class InvalidTimezone(LedgerError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"time zone {name[:100]!r} is not an IANA zone name"
            " (names are case-sensitive, e.g. Europe/Amsterdam or UTC)"
        )


class NaiveDatetime(LedgerError):
    def __init__(self) -> None:
        super().__init__(
            "a time without a UTC offset is ambiguous; give one, e.g. 2026-11-30T23:00Z"
        )


#: The zone names of the IANA time zone database, as the ``tzdata`` package pins
#: them (zones and their backward-compatible links, e.g. ``US/Eastern``). Not
#: whatever the host's zoneinfo folder holds: ``localtime`` follows the host's
#: own clock setting, ``posix/...`` and ``right/...`` are copies (``right/``
#: counts leap seconds). ``Factory`` is IANA's placeholder for "zone not set".
IANA_ZONES: frozenset[str] = frozenset(
    files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
) - {"Factory"}


def check_timezone(name: str) -> str:
    """An account's zone is an IANA name: it decides every month boundary, forever."""
    if name not in IANA_ZONES:
        raise InvalidTimezone(name)
    zone(name)
    return name


_ZONES: dict[str, ZoneInfo] = {}


def zone(name: str) -> ZoneInfo:
    found = _ZONES.get(name)  # called per email: skip ZoneInfo's own key checks
    if found is not None:
        return found
    try:
        found = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe", too long
        raise InvalidTimezone(name) from exc
    _ZONES[name] = found
    return found


def check_aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise NaiveDatetime()
    return instant


@dataclass(frozen=True, order=True, slots=True)
class Month:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise LedgerError(f"month out of range: {self.month}")

    @classmethod
    def parse(cls, text: str) -> Month:
        try:
            year, month = text.split("-")
            return cls(int(year), int(month))
        except ValueError as exc:
            raise LedgerError(f"not a month: {text!r} (expected YYYY-MM)") from exc

    @classmethod
    def containing(cls, instant: datetime, tz: str) -> Month:
        local = check_aware(instant).astimezone(zone(tz))
        return Month.of(local.year, local.month)

    @staticmethod
    def of(year: int, month: int) -> Month:
        """``Month(year, month)``, shared: months are immutable values, built per email."""
        found = _MONTHS.get((year, month))
        if found is None:
            found = _MONTHS[(year, month)] = Month(year, month)
        return found

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def starts_at(self, tz: str) -> datetime:
        """The instant of local midnight on the 1st, as an aware UTC datetime."""
        local = datetime(self.year, self.month, 1, tzinfo=zone(tz))
        return local.astimezone(UTC)

    def ends_at(self, tz: str) -> datetime:
        """Exclusive end: the start of the next month."""
        return self.next().starts_at(tz)

    def closable_at(self, tz: str, grace: timedelta) -> datetime:
        """When a close command may document this month: its end plus the grace."""
        return self.ends_at(tz) + grace

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


_MONTHS: dict[tuple[int, int], Month] = {}


def local_date(instant: datetime, tz: str) -> date:
    return check_aware(instant).astimezone(zone(tz)).date()


_DURATION = TypeAdapter(timedelta)


def iso_duration(value: timedelta) -> str:
    """A duration as settings are written and refusals quote them: ISO 8601,
    e.g. ``P7D``, ``PT6H``."""
    text: str = _DURATION.dump_python(value, mode="json")
    return text
