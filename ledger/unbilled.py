"""Nothing accepted and never billed: an email account's history read as an auditor.

The check walks one email account's events in version order, the order they
were decided in, and keeps three counts of its own (never the aggregate's):

- every accepted message points at the event that billed it (its dedupe row):
  an ``EmailsRecorded`` must be pointed at by exactly as many messages as it
  counts emails, so a deleted or a forged dedupe row is found;
- the emails recorded for a month while it was open are exactly the month's
  emails on its document's lines (included + usage, custom SMTP on its own
  line), and a month documented gets no more on-time emails;
- the emails recorded after their month was documented (late usage) are on the
  late-usage lines of the next document issued, all of them and only them.

Late custom-SMTP emails are counted apart: they are never charged and no
document line shows them (a known gap of the documents, reported, not a
finding). Months past their close grace without a document are the closer's
question (``projections/unbilled_audit.py`` asks it), numbering is
``ledger.numbering.audit_numbers``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ledger.documents import Document
from ledger.emails.usage import UsageEntry
from ledger.periods import Month

FindingKind = Literal["keys", "lines", "late", "undocumented", "history", "numbering"]

#: The lines that carry a month's platform emails (a volume true-up repeats them).
EMAIL_LINES = ("included", "usage")


@dataclass(frozen=True, slots=True)
class Finding:
    account_id: str
    kind: FindingKind
    detail: str


@dataclass(slots=True)
class EmailAccountBooks:
    """One email account's emails against its documents, event by event."""

    account_id: str
    findings: list[Finding] = field(default_factory=list)
    #: The platform and custom-SMTP emails of each open month, recorded on time.
    open: dict[Month, list[int]] = field(default_factory=dict)
    #: Late platform emails waiting for the next document, by month.
    late: dict[Month, int] = field(default_factory=dict)
    documented: set[Month] = field(default_factory=set)
    emails: int = 0
    on_lines: int = 0
    late_smtp: int = 0

    def _found(self, kind: FindingKind, detail: str) -> None:
        self.findings.append(Finding(self.account_id, kind, detail))

    def recorded(self, version: int, entries: Iterable[UsageEntry], keys: int) -> None:
        """An ``EmailsRecorded`` (``version``) and the accepted messages pointing at it."""
        count = 0
        for entry in entries:
            count += entry.platform + entry.custom_smtp
            if entry.late:
                if entry.platform:
                    self.late[entry.month] = self.late.get(entry.month, 0) + entry.platform
                self.late_smtp += entry.custom_smtp
            elif entry.month in self.documented:
                self._found(
                    "lines",
                    f"event {version} records {entry.platform + entry.custom_smtp:,} emails"
                    f" on time for {entry.month}, already documented",
                )
            else:
                month = self.open.setdefault(entry.month, [0, 0])
                month[0] += entry.platform
                month[1] += entry.custom_smtp
        self.emails += count
        if keys != count:
            self._found(
                "keys",
                f"event {version} records {count:,} emails; {keys:,} accepted messages point at it",
            )

    def unrecorded_keys(self, version: int, keys: int) -> None:
        """Accepted emails pointing at an event that records no emails."""
        self._found("keys", f"{keys:,} accepted emails point at event {version}, which bills none")

    def issued(self, version: int, document: Document) -> None:
        """A month's document (``DocumentIssued``): its lines against the counts."""
        period = document.period
        assert isinstance(period, Month)  # an email account documents months
        platform, smtp = self.open.pop(period, [0, 0])
        lines = document.lines
        shown = sum(line.quantity for line in lines if line.kind in EMAIL_LINES)
        shown_smtp = sum(line.quantity for line in lines if line.kind == "custom_smtp")
        shown_late = sum(line.quantity for line in lines if line.kind == "late_usage")
        where = f"{document.number} ({period}, event {version})"
        if shown != platform:
            self._found(
                "lines", f"{where} shows {shown:,} emails; {platform:,} were recorded for it"
            )
        if shown_smtp != smtp:
            self._found(
                "lines",
                f"{where} shows {shown_smtp:,} custom-SMTP emails; {smtp:,} were recorded",
            )
        pending = sum(self.late.values())
        if shown_late != pending:
            self._found(
                "late",
                f"{where} shows {shown_late:,} late emails; {pending:,} were waiting for it",
            )
        self.on_lines += shown + shown_smtp + shown_late
        self.late.clear()
        self.documented.add(period)

    def skipped(self, version: int, month: Month) -> None:
        """A month closed without a document: it must have had no emails."""
        platform, smtp = self.open.pop(month, [0, 0])
        if platform or smtp:
            self._found(
                "lines",
                f"{month} was closed without a document (event {version}) but"
                f" {platform + smtp:,} emails were recorded for it",
            )
        self.documented.add(month)

    @property
    def waiting(self) -> int:
        """Emails not on a document yet: open months and late usage for the next one."""
        return sum(p + s for p, s in self.open.values()) + sum(self.late.values())
