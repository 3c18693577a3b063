"""Command handlers: one function per command, one table that maps them.

A batch of commands (all the messages of one consumed partition batch) is
applied to aggregates held in a :class:`BatchWork`, then saved with a single
``ProcessingEvent``: aggregate events, the Kafka position, dedupe keys and
dead letters commit together or not at all. A command the domain refuses
becomes a :class:`Rejection` (dead-lettered by the caller) and leaves the
aggregates as they were. A command for an account that does not exist yet
becomes a :class:`Parking`: Kafka gives no order between topics, so a fact
may arrive before its account's opening; the caller parks it until then.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import PersistenceError, Tracking

from commands.batch_rows import AccountRow, ContactRow, DeadLetterRow, DedupeKeys, ScheduleRow
from commands.collecting import reschedules, schedule_row
from commands.models import (
    AccountCommand,
    ChangePlan,
    CloseAccount,
    OpenAccount,
    Origin,
    PaymentFact,
    PurchaseCredit,
    ReceivePayment,
    RecordContactChanges,
    RecordEmailsSent,
    RecordPaymentFailure,
)
from commands.numbers import NumberAllocator
from commands.parked import ParkedRow, Redriven
from commands.store import LedgerRecorder
from ledger.application import Ledger
from ledger.contacts.account import ContactsAccount
from ledger.documents import Document
from ledger.emails.account import Account
from ledger.errors import (
    AccountAlreadyOpen,
    AccountNotFound,
    InvariantBroken,
    LedgerError,
    PlanNotAllowed,
)
from ledger.money import Money
from ledger.opening import account_uuid
from ledger.payments.chasing import require_policy
from ledger.payments.held import PaymentReport
from ledger.plans import Catalogue, ContactsPlan


@dataclass(frozen=True, slots=True)
class Rejection:
    origins: tuple[Origin, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Parking:
    """Facts of one command whose account is not open yet, with their event times.

    Not a refusal: the account's opening may still be on its way (another
    topic). The aggregates are as they were (nothing was loaded).
    """

    account_id: str
    origins: tuple[Origin, ...]
    event_times: tuple[datetime, ...]
    reason: str


@dataclass
class BatchWork:
    """What one batch loaded and decided, saved in one transaction."""

    ledger: Ledger
    catalogue: Catalogue
    accounts: dict[str, Account | ContactsAccount] = field(default_factory=dict)
    opened: list[AccountRow] = field(default_factory=list)
    dedupe: list[DedupeKeys] = field(default_factory=list)
    contacts: list[ContactRow] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    parkings: list[Parking] = field(default_factory=list)
    #: Messages applied that dedupe by their own version, not by a dedupe key.
    versioned_messages: int = 0
    #: Account ids known to have no stored events (one lookup for a whole batch).
    absent: set[str] = field(default_factory=set)
    #: Stored (version, billable) of the batch's contacts, by account then contact id.
    known_contacts: dict[str, dict[str, tuple[int, bool]]] = field(default_factory=dict)
    #: Gapless numbers drawn by the batch (final invoices of paid proformas), saved in
    #: its transaction; None until one is drawn.
    numbers: NumberAllocator | None = None
    #: Final invoices the batch issued, in order.
    invoices: list[Document] = field(default_factory=list)

    def next_number(self, year: int) -> str:
        if self.numbers is None:
            # Read from the store, not the cache: a closer may have numbered documents
            # since, and a batch that failed to commit may have left a copy advanced.
            self.numbers = NumberAllocator(self.ledger, fresh=True)
        return self.numbers(year)

    def account(self, account_id: str) -> Account | ContactsAccount:
        account = self.accounts.get(account_id)
        if account is None:
            account = self.ledger.get_account(account_id)
            self.accounts[account_id] = account
        return account

    def email_account(self, account_id: str) -> Account:
        account = self.account(account_id)
        if not isinstance(account, Account):
            raise PlanNotAllowed(
                f"account {account_id!r} is billed by contacts: no prepaid credit, no email plan"
            )
        return account

    def contacts_account(self, account_id: str) -> ContactsAccount:
        account = self.account(account_id)
        if not isinstance(account, ContactsAccount):
            raise PlanNotAllowed(f"account {account_id!r} is billed by emails, not by contacts")
        return account

    def look_up_contacts(self, commands: Sequence[RecordContactChanges]) -> None:
        """One query for the stored state of every contact the batch changes; the
        only one (the consumer does not fetch it ahead: the batch is applied right
        after the save before it settles, so little would overlap)."""
        recorder = self.ledger.recorder
        if not isinstance(recorder, LedgerRecorder):
            return  # a store without the ledger's tables (unit tests) holds no contact
        stored = recorder.latest_contacts(contact_pairs(commands))
        for (account_id, contact_id), held in stored.items():
            self.known_contacts.setdefault(account_id, {})[contact_id] = held

    def exists(self, account_id: str) -> bool:
        if account_id in self.accounts:
            return True
        if account_id in self.absent:
            return False
        return self.ledger.find_account(account_id) is not None

    def look_up_absent(self, account_ids: Sequence[str]) -> None:
        """Ask once which of these accounts have no history yet, instead of once each."""
        recorder = self.ledger.recorder
        if not isinstance(recorder, LedgerRecorder):
            return
        wanted = {a: account_uuid(a) for a in account_ids if a not in self.accounts}
        if not wanted:
            return
        stored = recorder.existing_originators(list(wanted.values()))
        self.absent.update(a for a, aggregate_id in wanted.items() if aggregate_id not in stored)

    def applied(
        self, origin: Origin | None, account: Account | ContactsAccount, version: int
    ) -> None:
        if origin is not None:
            self.dedupe.append(DedupeKeys(account.account_id, account.id, version, (origin,)))

    @property
    def applied_messages(self) -> int:
        """Messages applied: one dedupe key each, or a version of their own."""
        return sum(len(keys.origins) for keys in self.dedupe) + self.versioned_messages


def open_account(cmd: OpenAccount, work: BatchWork) -> None:
    if work.exists(cmd.account_id):
        raise AccountAlreadyOpen(cmd.account_id)
    plan = work.catalogue.get(cmd.plan)
    account: Account | ContactsAccount
    if isinstance(plan, ContactsPlan):
        if cmd.payment_mode != "postpaid":
            raise PlanNotAllowed(
                f"contacts plan {plan.id!r} is paid per proforma (payment_mode postpaid),"
                " not from prepaid credit"
            )
        account = ContactsAccount.open(
            account_id=cmd.account_id,
            plan=plan,
            products=cmd.products,
            billing_period=cmd.billing_period,
            currency=cmd.currency,
            timezone=cmd.timezone,
            tax_rate=cmd.tax_rate,
            opened_at=cmd.at,
        )
    else:
        if cmd.billing_period != "month":
            raise PlanNotAllowed(
                f"email plan {plan.id!r} bills monthly, not by {cmd.billing_period}"
            )
        if cmd.products:
            raise PlanNotAllowed(f"email plan {plan.id!r} has no products")
        account = Account.open(
            account_id=cmd.account_id,
            plan=plan,
            payment_mode=cmd.payment_mode,
            currency=cmd.currency,
            timezone=cmd.timezone,
            tax_rate=cmd.tax_rate,
            opened_at=cmd.at,
        )
    work.accounts[cmd.account_id] = account
    work.opened.append(AccountRow(cmd.account_id, account.id))
    work.applied(cmd.origin, account, account.INITIAL_VERSION)  # the Opened event


def purchase_credit(cmd: PurchaseCredit, work: BatchWork) -> None:
    account = work.email_account(cmd.account_id)
    version = account.purchase_credit(Money.of(cmd.amount, account.currency), cmd.reference, cmd.at)
    work.applied(cmd.origin, account, version)


def change_plan(cmd: ChangePlan, work: BatchWork) -> None:
    account = work.account(cmd.account_id)
    if isinstance(account, ContactsAccount):
        plan = work.catalogue.contacts_plan(cmd.plan)
        version = account.change_plan(plan, cmd.products, cmd.billing_period, cmd.at)
    else:
        if cmd.products or cmd.billing_period not in (None, "month"):
            raise PlanNotAllowed("an email plan has no products and bills monthly")
        version = account.change_plan(work.catalogue.email_plan(cmd.plan), cmd.at)
    work.applied(cmd.origin, account, version)


def close_account(cmd: CloseAccount, work: BatchWork) -> None:
    account = work.account(cmd.account_id)
    account.close(cmd.at)
    work.applied(cmd.origin, account, account.version)


def receive_payment(cmd: ReceivePayment, work: BatchWork) -> None:
    account = work.account(cmd.account_id)
    report = payment_report(cmd)
    if isinstance(account, ContactsAccount):
        # A proforma paid in full gets its final invoice, numbered in this batch.
        version, invoices = account.receive_payment(
            report, work.next_number, work.catalogue.dunning
        )
        work.invoices.extend(invoices)
    else:
        version = account.receive_payment(report, work.catalogue.dunning)
    work.applied(cmd.origin, account, version)


def record_payment_failure(cmd: RecordPaymentFailure, work: BatchWork) -> None:
    account = work.account(cmd.account_id)
    policy = require_policy(work.catalogue.dunning)
    version = account.record_payment_failure(payment_report(cmd), cmd.reason, cmd.retryable, policy)
    work.applied(cmd.origin, account, version)


def payment_report(cmd: PaymentFact) -> PaymentReport:
    return PaymentReport.of(
        cmd.payment_id, cmd.amount, cmd.currency, cmd.reference, cmd.request_id, cmd.at
    )


def record_emails_sent(cmd: RecordEmailsSent, work: BatchWork) -> None:
    account = work.account(cmd.account_id)
    # The items have the ``sent_at`` and ``route`` the aggregate reads. One event per
    # month: each email's dedupe key points at the event of its month, which billed it.
    for version, emails in account.record_emails(cmd.emails):
        origins = [email.origin for email in emails if email.origin is not None]
        work.dedupe.append(DedupeKeys(account.account_id, account.id, version, origins))


def record_contact_changes(cmd: RecordContactChanges, work: BatchWork) -> None:
    account = work.contacts_account(cmd.account_id)
    known = work.known_contacts.get(cmd.account_id, {})
    version, applied = account.record_contact_changes(cmd.changes, known)
    account_id, aggregate_id = account.account_id, account.id
    for change in applied:
        work.contacts.append(
            ContactRow(
                account_id,
                change.contact_id,
                change.version,
                change.changed_at,
                change.counts_from,
                list(change.reasons),
                change.deleted,
                aggregate_id,
                version,
            )
        )
    # No CloudEvent dedupe keys: a contact change is idempotent by its natural key
    # (account, contact, version), stored above; a re-published one is not newer.
    work.versioned_messages += len(cmd.changes)


HANDLERS: dict[type[Any], Callable[[Any, BatchWork], None]] = {
    OpenAccount: open_account,
    PurchaseCredit: purchase_credit,
    ChangePlan: change_plan,
    CloseAccount: close_account,
    RecordEmailsSent: record_emails_sent,
    RecordContactChanges: record_contact_changes,
    ReceivePayment: receive_payment,
    RecordPaymentFailure: record_payment_failure,
}


def origins_of(cmd: AccountCommand) -> tuple[Origin, ...]:
    if isinstance(cmd, RecordEmailsSent):
        return tuple(e.origin for e in cmd.emails)
    if isinstance(cmd, RecordContactChanges):
        return tuple(c.origin for c in cmd.changes)
    return (cmd.origin,) if cmd.origin else ()


def event_times_of(cmd: AccountCommand) -> tuple[datetime, ...]:
    """The event time of each of :func:`origins_of`, in the same order."""
    if isinstance(cmd, RecordEmailsSent):
        return tuple(e.sent_at for e in cmd.emails)
    if isinstance(cmd, RecordContactChanges):
        return tuple(c.changed_at for c in cmd.changes)
    return (cmd.at,) if cmd.origin else ()


def contact_pairs(commands: Sequence[AccountCommand]) -> list[tuple[str, str]]:
    """The (account, contact) pairs whose stored state a batch's contact changes need."""
    return [
        (cmd.account_id, item.state.contact_id)
        for cmd in commands
        if isinstance(cmd, RecordContactChanges)
        for item in cmd.changes
    ]


def apply_commands(commands: Sequence[AccountCommand], work: BatchWork) -> None:
    openings = [cmd.account_id for cmd in commands if isinstance(cmd, OpenAccount)]
    if len(openings) > 1:
        work.look_up_absent(openings)
    contact_changes = [cmd for cmd in commands if isinstance(cmd, RecordContactChanges)]
    if contact_changes:
        work.look_up_contacts(contact_changes)
    for cmd in commands:
        try:
            HANDLERS[type(cmd)](cmd, work)
        except AccountNotFound as exc:
            if exc.account_id == cmd.account_id:  # its own account: not open yet
                work.parkings.append(
                    Parking(cmd.account_id, origins_of(cmd), event_times_of(cmd), str(exc))
                )
            else:
                work.rejections.append(Rejection(origins_of(cmd), str(exc)))
        except LedgerError as exc:
            work.rejections.append(Rejection(origins_of(cmd), str(exc)))
        except (PersistenceError, OSError):
            raise  # the store is unavailable: the batch is redone, nothing is refused
        except InvariantBroken:
            raise  # our state is wrong, not the input: stop, don't dead-letter the messenger
        except Exception as exc:
            raise PoisonCommand(cmd, exc) from exc


class PoisonCommand(Exception):
    """A command whose handler failed unexpectedly (a bug, or input no rule foresaw).

    The aggregates it touched may be half-changed: the caller discards the
    whole batch's work, evicts what it loaded, and applies the batch again
    without this command, whose messages are dead-lettered with the error.
    """

    def __init__(self, command: AccountCommand, error: Exception) -> None:
        super().__init__(f"internal error: {type(error).__name__}: {error}"[:1000])
        self.command = command
        self.error = error


def save_batch(
    work: BatchWork,
    tracking: Tracking | None,
    dead_letters: Sequence[DeadLetterRow] = (),
    parked: Sequence[ParkedRow] = (),
    redriven: Redriven | None = None,
) -> None:
    """One transaction: new events of every touched account and of the number
    sequences it drew from, position, dedupe keys, dead letters, facts parked,
    the schedule rows of accounts whose next chase may have moved, and (a
    re-drive, with no position) the parked rows it settled."""
    processing = ProcessingEvent[Any](tracking=tracking)
    # What ``processing.collect_events(*accounts, **rows)`` does, without its two
    # runtime Protocol checks per aggregate (~70 us each: hundreds per batch); its
    # source is pinned by tests/unit/test_library_touches.py (docs/library-touches.md).
    sequences = work.numbers.commit() if work.numbers is not None else []
    policy = work.catalogue.dunning
    schedule: list[ScheduleRow] = []
    for account in work.accounts.values():
        events = account.collect_events()
        processing.events.extend(events)
        processing.aggregates[account.id] = account
        if policy is not None and reschedules(events):
            schedule.append(schedule_row(account, policy))
    for sequence in sequences:
        processing.events.extend(sequence.collect_events())
        processing.aggregates[sequence.id] = sequence
    processing.saved_kwargs.update(
        schedule=schedule,
        dedupe=work.dedupe,
        contacts=work.contacts,
        accounts=work.opened,
        dead_letters=dead_letters,
        parked=parked,
        redriven=redriven,
    )
    work.ledger.record(processing)
