"""Command models: imperative, validated, independent of where they came from.

A command that came from Kafka carries its :class:`Origin` (dedupe key and
source coordinates) so that the handler can record the dedupe key with the
event it produced, or dead-letter the message with its coordinates.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ledger.contacts.billable import ContactState


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Origin(NamedTuple):
    """Where a command came from: upstream identity and Kafka coordinates.

    A named tuple (immutable, and about 3x cheaper to build than a frozen
    dataclass, whose ``__init__`` goes through ``object.__setattr__`` per
    field): it is built from an already validated message, once per email, on
    the hot path.
    """

    source: str
    event_id: str
    topic: str = ""
    partition: int = -1
    offset: int = -1
    #: What an auditor traces the message by: an email's message id, a contact's id.
    message_id: str | None = None

    @property
    def dedupe_key(self) -> tuple[str, str]:
        return (self.source, self.event_id)


BillingPeriod = Literal["month", "quarter", "half_year", "year"]


class OpenAccount(Command):
    account_id: str = Field(min_length=1)
    plan: str
    payment_mode: Literal["prepaid", "postpaid"]
    currency: str
    timezone: str = "UTC"
    tax_rate: Decimal = Decimal(0)
    billing_period: BillingPeriod = "month"
    products: tuple[str, ...] = ()
    at: AwareDatetime
    origin: Origin | None = None


class PurchaseCredit(Command):
    account_id: str
    amount: Decimal
    reference: str
    at: AwareDatetime
    origin: Origin | None = None


class ChangePlan(Command):
    """For a contacts plan, ``products`` / ``billing_period`` left out keep the current choice."""

    account_id: str
    plan: str
    products: tuple[str, ...] | None = None
    billing_period: BillingPeriod | None = None
    at: AwareDatetime
    origin: Origin | None = None


class CloseAccount(Command):
    account_id: str
    at: AwareDatetime
    origin: Origin | None = None


class PaymentFact(Command):
    """What the payment bridge reports of one payment (attempt).

    ``payment_id`` is what every allocation of its money names: the CloudEvent's
    ``source`` and ``id`` (the dedupe key), so an auditor follows the message to
    each document it paid.
    """

    account_id: str
    payment_id: str
    amount: Decimal
    currency: str
    reference: str | None = None
    request_id: str | None = None
    at: AwareDatetime
    origin: Origin | None = None


class ReceivePayment(PaymentFact):
    """Money received (``payment.succeeded``): settle the document it names."""


class RecordPaymentFailure(PaymentFact):
    """A failed collection attempt (``payment.failed``); ``retryable`` False: a hard decline."""

    reason: str
    retryable: bool = True


class SentEmailItem(NamedTuple):
    """One email of a batch (a named tuple for the same reason as :class:`Origin`)."""

    sent_at: datetime
    route: Literal["platform", "custom_smtp"]
    origin: Origin


class RecordEmailsSent(Command):
    """Every email of one account in one consumed batch: billed as one event."""

    account_id: str
    emails: tuple[SentEmailItem, ...]


class ContactChangeItem(NamedTuple):
    """One contact change of a batch (a named tuple for the same reason as :class:`Origin`)."""

    state: ContactState
    changed_at: datetime
    origin: Origin


class RecordContactChanges(Command):
    """Every contact change of one account in one consumed batch, in arrival order."""

    account_id: str
    changes: tuple[ContactChangeItem, ...]


class PayProforma(Command):
    """The operator says a proforma was paid (``ledger mark-paid``): what it still owes
    is received, and its final invoice issued, as a ``payment.succeeded`` would."""

    account_id: str
    proforma_id: str
    at: AwareDatetime


class ClosePeriods(Command):
    """Document every month that ended at least ``grace`` before ``as_of``."""

    as_of: datetime
    grace: timedelta = timedelta(hours=6)


AccountCommand = (
    OpenAccount
    | PurchaseCredit
    | ChangePlan
    | CloseAccount
    | RecordEmailsSent
    | RecordContactChanges
    | ReceivePayment
    | RecordPaymentFailure
)
