"""Usage of one billing month, as the account aggregate holds it.

A month is a run of *segments*, one per plan in force while emails were sent:
a plan change mid-month starts a new segment, the month's position counter
carries on (volume discounts earned are not lost), and each segment keeps the
terms its emails were priced with. Late usage (event time in a month already
documented) is priced as the continuation of that month under the terms in
force when it closed, and waits for the next document.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from decimal import Decimal

from ledger.emails.pricing import Charge, charges_as_sent, final_charges, free_count, merge, total
from ledger.errors import InvariantBroken
from ledger.money import Money
from ledger.periods import Month
from ledger.plans import EmailPlan


@dataclass(frozen=True, slots=True)
class Segment:
    plan: EmailPlan
    start: int
    end: int
    charged: tuple[Charge, ...] = ()

    @property
    def included(self) -> int:
        return free_count(self.plan, self.start, self.end)


@dataclass(frozen=True, slots=True)
class MonthUsage:
    month: Month
    fee: Money | None = None
    fee_plan: EmailPlan | None = None
    platform: int = 0
    custom_smtp: int = 0
    segments: tuple[Segment, ...] = ()

    @property
    def charged(self) -> Decimal:
        return sum((total(s.charged) for s in self.segments), Decimal(0))

    @property
    def included(self) -> int:
        return sum(s.included for s in self.segments)

    def final_charges(self, segment: Segment) -> tuple[Charge, ...]:
        """What a segment's emails cost at the month's volume so far."""
        return final_charges(segment.plan, segment.start, segment.end, self.platform)

    @property
    def priced(self) -> tuple[Charge, ...]:
        """What the month's emails cost at its volume so far, by plan and tier: what its
        document charges for them if no more come (exact; lines round them).

        For graduated plans this is what was charged; for volume plans it is the
        month priced at the tier its volume has reached, not the sum of what each
        email was charged as sent. Either way a function of the month's emails.
        """
        charges: tuple[Charge, ...] = ()
        for segment in self.segments:
            charges = merge(charges, self.final_charges(segment))
        return charges

    def check_positions(self) -> None:
        """The segments tile the month's platform positions ``(0, platform]``, in order."""
        end = 0
        for segment in self.segments:
            if segment.start != end or segment.end < segment.start:
                raise InvariantBroken(f"{self.month}: segments do not follow on at {end}")
            end = segment.end
        if end != self.platform:
            raise InvariantBroken(
                f"{self.month}: {self.platform} platform emails, segments up to {end}"
            )

    def with_fee(self, fee: Money, plan: EmailPlan) -> MonthUsage:
        return replace(self, fee=fee, fee_plan=plan)

    def record(
        self, plan: EmailPlan, platform: int, custom_smtp: int
    ) -> tuple[MonthUsage, tuple[Charge, ...]]:
        """Add a batch; return the new month and what the batch is charged now (as sent)."""
        charges = charges_as_sent(plan, self.platform, self.platform + platform)
        return self.extended(plan, platform, custom_smtp, charges), charges

    def extended(
        self, plan: EmailPlan, platform: int, custom_smtp: int, charges: tuple[Charge, ...]
    ) -> MonthUsage:
        """The month with a batch added that was charged ``charges`` as sent: bookkeeping
        only, so an event can replay it from what it recorded, without pricing."""
        start, end = self.platform, self.platform + platform
        segments = self.segments
        if platform:
            if segments and segments[-1].plan == plan:
                last = segments[-1]
                segments = (
                    *segments[:-1],
                    replace(last, end=end, charged=merge(last.charged, charges)),
                )
            else:
                segments = (*segments, Segment(plan, start, end, charges))
        return replace(
            self,
            platform=end,
            custom_smtp=self.custom_smtp + custom_smtp,
            segments=segments,
        )

    def standing(self) -> MonthStanding:
        return MonthStanding(
            self.month, self.platform, self.included, self.custom_smtp, self.fee, self.priced
        )


@dataclass(frozen=True, slots=True)
class MonthStanding:
    """An open month's figures as they now stand: its emails, those within the
    allowance, its fee and what its emails cost at its volume so far
    (:attr:`MonthUsage.priced`). What a usage event tells the read models about the
    month, without the segments and plan terms the aggregate keeps to price it."""

    month: Month
    platform: int
    included: int
    custom_smtp: int
    fee: Money | None
    priced: tuple[Charge, ...]


@dataclass(frozen=True, slots=True)
class ClosedMonth:
    """What a documented month needs for pricing late usage: its volume and last terms."""

    month: Month
    volume: int
    plan: EmailPlan

    def with_late(self, count: int) -> ClosedMonth:
        return replace(self, volume=self.volume + count)


@dataclass(frozen=True, slots=True)
class LateUsage:
    """Emails that belong to a documented month, billed on the next document."""

    month: Month
    count: int
    charges: tuple[Charge, ...]

    @property
    def amount(self) -> Decimal:
        return total(self.charges)


def record_late(closed: ClosedMonth, count: int) -> tuple[ClosedMonth, tuple[Charge, ...]]:
    """Late emails continue the closed month's positions; issued documents are never re-priced."""
    charges = charges_as_sent(closed.plan, closed.volume, closed.volume + count)
    return closed.with_late(count), charges


def add_late(
    pending: tuple[LateUsage, ...], month: Month, count: int, charges: tuple[Charge, ...]
) -> tuple[LateUsage, ...]:
    """Late usage by month, in month order (not arrival order, which batching changes)."""
    for index, late in enumerate(pending):
        if late.month == month:
            merged = LateUsage(month, late.count + count, merge(late.charges, charges))
            return (*pending[:index], merged, *pending[index + 1 :])
    return tuple(sorted((*pending, LateUsage(month, count, charges)), key=lambda item: item.month))


@functools.lru_cache(maxsize=256)
def terms_after_closing(plan: EmailPlan) -> EmailPlan:
    """The terms of a month after a closed account's last paid month: no fee was
    charged for it, so no emails are included; every platform email pays the
    plan's per-email price from the first one (the contacts model's rule too)."""
    return plan.model_copy(
        update={"included_emails": 0, "name": f"{plan.name}, after closing (no emails included)"}
    )


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """What one batch did to one month: the audit line behind a ledger event.

    ``plan_index`` is which of the account's terms by business time the emails
    were priced with (0 in events stored before it was recorded).
    """

    month: Month
    late: bool
    platform: int
    custom_smtp: int
    included: int
    charges: tuple[Charge, ...]
    plan_index: int = 0

    @property
    def amount(self) -> Decimal:
        return total(self.charges)


@dataclass(frozen=True, slots=True)
class WholeUsage:
    """What an ``EmailsRecorded`` event stored before version 2: the months it changed,
    whole (segments with their plan terms), with every documented month and the late
    usage waiting for a document. Replayed as it stood."""

    months: tuple[MonthUsage, ...]
    closed_months: tuple[ClosedMonth, ...]
    pending_late: tuple[LateUsage, ...]
