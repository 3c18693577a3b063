"""How a contacts account's proformas are paid (seed 002): the decisions of
:class:`ledger.contacts.account.ContactsAccount` over money in.

A proforma paid in full becomes its final invoice with the next gapless
number, whatever brought the money: a ``payment.succeeded``, credit held when
the proforma was issued, or the operator's ``ledger mark-paid`` (which is a
payment of what the proforma still owes). The allocation is
:mod:`ledger.payments.allocation`'s; the aggregate records it
(``PaymentReceived``, ``CreditApplied``) and then one ``ProformaPaid`` per
proforma it paid in full.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ledger.contacts.proformas import OpenProforma, check_payable_on, final_invoice
from ledger.documents import Document
from ledger.payments.allocation import Settlement
from ledger.payments.chasing import PaymentsChased
from ledger.payments.held import PaymentReport, PaymentsHeld, owed
from ledger.payments.policy import DunningPolicy
from ledger.periods import check_aware, local_date

#: The gapless number of a final invoice, by the year of its date.
NextNumber = Callable[[int], str]


class ProformaPayments(PaymentsChased):
    """Decisions over the aggregate state below; the events are the aggregate's."""

    timezone: str
    open_proformas: dict[str, OpenProforma]
    _proforma_paid: Callable[..., None]
    open_proforma: Callable[[str], OpenProforma]  # AllowanceMonths'

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        # The unpaid proformas of an older snapshot are its receivables (none was
        # paid in part before payments were events).
        PaymentsHeld.upcast_v1_v2(state)
        for number, held in state["open_proformas"].items():
            state["receivables"][number] = owed(held.document, "collection")

    def receive_payment(
        self, report: PaymentReport, next_number: NextNumber, policy: DunningPolicy | None
    ) -> tuple[int, list[Document]]:
        """Money received: one event, then the final invoice of each proforma it paid
        in full (numbered by ``next_number``; the caller saves the sequence with
        this account). Returns the recording event's version (what the dedupe
        key points at) and the invoices issued. Nothing is recorded, and no
        number drawn, if a proforma would be paid before its issue date. What it
        does to the collections and dunning is recorded between the two
        (``DunningChanged``); ``policy`` may be None for a payment that answers no
        collection request (``ledger mark-paid``)."""
        settlement = self.settle_payment(report)
        paid_on = local_date(report.at, self.timezone)
        for number in self._paid_proformas(settlement):
            check_payable_on(self.open_proformas[number].document, number, paid_on)
        version = self._record_payment(settlement, report)
        self._chase_settlement(settlement, report.at, report, policy)
        return version, self._final_invoices(settlement, report.at, next_number)

    def pay(self, proforma_id: str, paid_at: datetime, next_number: NextNumber) -> Document:
        """The operator's ``ledger mark-paid``: what the proforma still owes is received
        (no collection request answered), through :meth:`receive_payment`."""
        self.open_proforma(proforma_id)  # refuses a paid, replaced or unknown one
        due = self.receivables[proforma_id].amount_due
        if due.is_zero:  # nothing to receive (a proforma of 0.00): only its invoice
            return self._final_invoice(proforma_id, paid_at, next_number)
        at = check_aware(paid_at)
        report = PaymentReport(f"mark-paid:{proforma_id}", due, proforma_id, None, at)
        _, invoices = self.receive_payment(report, next_number, None)
        return next(invoice for invoice in invoices if invoice.proforma == proforma_id)

    def _paid_proformas(self, settlement: Settlement) -> list[str]:
        return [number for number in settlement.paid if number in self.open_proformas]

    def _final_invoices(
        self, settlement: Settlement, at: datetime, next_number: NextNumber
    ) -> list[Document]:
        return [
            self._final_invoice(number, at, next_number)
            for number in self._paid_proformas(settlement)
        ]

    def _final_invoice(self, proforma_id: str, at: datetime, next_number: NextNumber) -> Document:
        """The final invoice, numbered now, with the proforma's lines."""
        invoice = final_invoice(
            self.open_proformas[proforma_id].document,
            proforma_id,
            local_date(check_aware(at), self.timezone),
            next_number,
        )
        self._proforma_paid(effective_at=at, proforma=proforma_id, invoice=invoice)
        return invoice
