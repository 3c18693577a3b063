"""Reporting queries over money in: an account's payments, receivables by age, notices.

They read the payments and notices read models (projections/payments.py,
projections/notices.py) beside ``documents`` and ``balances``, all in one schema,
through any :class:`projections.queries.Rows`. Amounts come back rounded to the
currency's minor unit for display (they are whole minor units already).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from ledger.errors import AccountNotFound
from projections.queries import Rows, rounded

#: The age buckets of an open amount, by days past its due date: (key, heading, last day).
BUCKETS: tuple[tuple[str, str, int | None], ...] = (
    ("current", "current", 0),
    ("days_1_30", "1-30", 30),
    ("days_31_60", "31-60", 60),
    ("days_61_90", "61-90", 90),
    ("days_over_90", "90+", None),
)


def age_bucket(days_past_due: int) -> str:
    """The bucket of an amount ``days_past_due`` days after its due date (0 or less:
    not due yet, or due today: ``current``)."""
    for key, _, last in BUCKETS:
        if last is None or days_past_due <= last:
            return key
    raise AssertionError("the last bucket has no end")  # pragma: no cover


# What was open at the end of :as_of (the account's local day): the payable documents
# issued by then, less what payments and held credit had allocated to them by then.
# Not payable: receipts (settled from the prepaid balance) and a proforma's final
# invoice (paid by the proforma). A replaced proforma stops being owed when its
# replacement is issued; a proforma paid before payments were events has no
# allocations, and stops being owed when its final invoice is issued.
_OPEN_AS_OF = """
WITH docs AS (
  SELECT d.number, d.account_id, d.currency, d.total, d.kind,
         COALESCE(d.due_on, d.issued_on) AS due_on, b.timezone
  FROM {schema}.documents AS d JOIN {schema}.balances AS b ON b.account_uuid = d.account_uuid
  WHERE d.kind IN ('invoice', 'proforma') AND d.proforma IS NULL
    AND d.issued_on <= %(as_of)s
    AND (%(account)s::text IS NULL OR d.account_id = %(account)s)
    AND NOT (d.kind = 'proforma' AND EXISTS (
      SELECT 1 FROM {schema}.documents AS s
      WHERE s.number = d.settled_by AND s.issued_on <= %(as_of)s)
      AND (d.status = 'replaced' OR NOT EXISTS (
        SELECT 1 FROM {schema}.payment_allocations AS a WHERE a.reference = d.number)))
), paid AS (
  SELECT a.reference, sum(a.amount) AS paid
  FROM {schema}.payment_allocations AS a JOIN docs ON docs.number = a.reference
  WHERE a.at < ((%(as_of)s::date + 1)::timestamp AT TIME ZONE docs.timezone)
  GROUP BY a.reference
)
SELECT docs.account_id, docs.number, docs.kind, docs.currency, docs.due_on,
       docs.total - COALESCE(paid.paid, 0) AS open, %(as_of)s::date - docs.due_on AS days
FROM docs LEFT JOIN paid ON paid.reference = docs.number
WHERE docs.total - COALESCE(paid.paid, 0) > 0
ORDER BY docs.account_id, docs.currency, docs.due_on, docs.number
"""


def _zero_buckets() -> dict[str, Decimal]:
    return {key: Decimal(0) for key, _, _ in BUCKETS} | {"total": Decimal(0)}


def _shown(sums: dict[str, Decimal], currency: str) -> dict[str, str]:
    return {key: rounded(amount, currency) for key, amount in sums.items()}


@dataclass
class PaymentReports:
    rows: Rows

    def _account(self, account_id: str) -> dict[str, Any]:
        found = self.rows.rows(
            "SELECT account_uuid, currency FROM {schema}.balances WHERE account_id = %s",
            (account_id,),
        )
        if not found:
            raise AccountNotFound(account_id)
        return found[0]

    def payments_of(self, account_id: str) -> dict[str, Any]:
        """Every payment of the account (oldest first), each with its allocations (its
        own and those of its held money later), and the credit the account holds."""
        account = self._account(account_id)
        uuid = account["account_uuid"]
        payments = self.rows.rows(
            "SELECT payment_id, kind, at, amount, currency, reference, request_id, reason,"
            " retryable, applied FROM {schema}.payments WHERE account_uuid = %s"
            " ORDER BY at, event_version",
            (uuid,),
        )
        allocations = self.rows.rows(
            "SELECT payment_id, reference, amount, currency, from_credit, at"
            " FROM {schema}.payment_allocations WHERE account_uuid = %s"
            " ORDER BY event_version, position",
            (uuid,),
        )
        credit = self.rows.rows(
            "SELECT currency, reason, amount, pieces FROM {schema}.payment_credit"
            " WHERE account_uuid = %s ORDER BY currency, reason",
            (uuid,),
        )
        by_payment: dict[str, list[dict[str, Any]]] = {}
        for allocation in allocations:
            allocation["amount"] = rounded(allocation["amount"], allocation["currency"])
            by_payment.setdefault(allocation["payment_id"], []).append(allocation)
        listed = []
        for payment in payments:
            currency = payment["currency"]
            applied = payment["applied"]
            listed.append(
                {
                    **payment,
                    "amount": rounded(payment["amount"], currency),
                    "applied": None if applied is None else rounded(applied, currency),
                    "allocations": [
                        {k: v for k, v in a.items() if k != "payment_id"}
                        for a in by_payment.get(payment["payment_id"], [])
                    ],
                }
            )
        return {
            "account_id": account_id,
            "currency": account["currency"],
            "payments": listed,
            "credit_held": [{**c, "amount": rounded(c["amount"], c["currency"])} for c in credit],
        }

    def receivables(self, as_of: date, account_id: str | None = None) -> dict[str, Any]:
        """Open amounts at the end of ``as_of`` by account and age bucket (days past the
        due date), with each open document, and totals per currency."""
        if account_id is not None:
            self._account(account_id)
        documents = self.rows.rows(_OPEN_AS_OF, {"as_of": as_of, "account": account_id})
        accounts: dict[tuple[str, str], dict[str, Any]] = {}
        totals: dict[str, dict[str, Decimal]] = {}
        for doc in documents:
            currency, bucket = doc["currency"], age_bucket(doc["days"])
            key = (doc["account_id"], currency)
            entry = accounts.setdefault(key, {"sums": _zero_buckets(), "documents": []})
            per_currency = totals.setdefault(currency, _zero_buckets())
            for sums in (entry["sums"], per_currency):
                sums[bucket] += doc["open"]
                sums["total"] += doc["open"]
            entry["documents"].append(
                {
                    "number": doc["number"],
                    "kind": doc["kind"],
                    "due_on": doc["due_on"],
                    "days_past_due": max(doc["days"], 0),
                    "bucket": bucket,
                    "open": rounded(doc["open"], currency),
                }
            )
        return {
            "as_of": as_of,
            "accounts": [
                {
                    "account_id": account,
                    "currency": currency,
                    **_shown(entry["sums"], currency),
                    "documents": entry["documents"],
                }
                for (account, currency), entry in accounts.items()
            ],
            "totals": [
                {"currency": currency, **_shown(sums, currency)}
                for currency, sums in sorted(totals.items())
            ],
        }

    def notices(self, account_id: str | None = None, open_only: bool = False) -> dict[str, Any]:
        """Notices (of one account, or all; only open ones with ``open_only``), oldest
        first; and the account's dunning state (``current`` if it was never chased),
        or, of all accounts, those not ``current``."""
        if account_id is not None:
            self._account(account_id)
        notices = self.rows.rows(
            "SELECT account_id, notice_id, kind, reference, amount_due, currency, reason,"
            " attempt, next_attempt_at, opened_at, resolved_at, state, updated_at"
            " FROM {schema}.notices"
            " WHERE (%(account)s::text IS NULL OR account_id = %(account)s)"
            " AND (NOT %(open)s OR state = 'open') ORDER BY opened_at, account_id, notice_id",
            {"account": account_id, "open": open_only},
        )
        dunning = self.rows.rows(
            "SELECT b.account_id, COALESCE(d.state, 'current') AS state, d.since, d.reference,"
            " d.reason FROM {schema}.balances AS b"
            " LEFT JOIN {schema}.dunning AS d ON d.account_uuid = b.account_uuid"
            " WHERE (%(account)s::text IS NULL AND d.state <> 'current')"
            " OR b.account_id = %(account)s ORDER BY b.account_id",
            {"account": account_id},
        )
        return {
            "notices": [
                {**n, "amount_due": rounded(n["amount_due"], n["currency"])} for n in notices
            ],
            "dunning": dunning,
        }
