"""Reporting queries over the read models (the CLI today, HTTP later).

Amounts come back exact from the tables; ``rounded`` applies the ledger's one
rounding rule for display.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from ledger.errors import AccountNotFound, DocumentNotFound
from ledger.money import Money


class Rows(Protocol):
    """Runs a query over the read models' tables (``{schema}`` in it names their
    schema): a view (projections.view.TableView), or the CLI's one connection, which
    reads without importing eventsourcing."""

    def rows(
        self, query: str, params: Iterable[Any] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]: ...


def rounded(amount: Any, currency: str) -> str:
    return str(Money.of(amount, currency).rounded().amount)


def _settled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``paid`` and ``amount_due`` in the currency's minor units, like every amount
    (the columns' default is a bare 0, which would print as "0")."""
    for row in rows:
        for column in ("paid", "amount_due"):
            if row.get(column) is not None:
                row[column] = Money.of(row[column], row["currency"]).rounded().amount
    return rows


@dataclass
class Reports:
    balances_view: Rows
    usage_view: Rows
    documents_view: Rows
    contacts_view: Rows

    def balance(self, account_id: str) -> dict[str, Any]:
        rows = self.balances_view.rows(
            "SELECT account_id, account_uuid, currency, payment_mode, plan_id, balance, credited,"
            " debited, sending_blocked, status, updated_at, amount_owed, unapplied_credit"
            " FROM {schema}.balances WHERE account_id = %s",
            (account_id,),
        )
        if not rows:
            raise AccountNotFound(account_id)
        row = rows[0]
        currency = row["currency"]
        credit = self.balances_view.rows(
            "SELECT payment_id, amount, currency, reason, reference"
            " FROM {schema}.unapplied_credit WHERE account_uuid = %s ORDER BY position",
            (row.pop("account_uuid"),),
        )
        return {
            **row,
            "balance": rounded(row["balance"], currency),
            "balance_exact": str(row["balance"]),
            "credited": rounded(row["credited"], currency),
            "debited": rounded(row["debited"], currency),
            "owed": rounded(max(-row["balance"], 0), currency),
            "amount_owed": rounded(row["amount_owed"], currency),
            "unapplied_credit": rounded(row["unapplied_credit"], currency),
            # Every piece held, in any currency, with the reason it was not applied.
            "credit_held": [{**c, "amount": str(c["amount"])} for c in credit],
        }

    def all_balances(self) -> list[dict[str, Any]]:
        rows = self.balances_view.rows(
            "SELECT account_id, currency, payment_mode, plan_id, balance, sending_blocked, status,"
            " amount_owed, unapplied_credit FROM {schema}.balances ORDER BY account_id"
        )
        return [
            {
                **r,
                "balance": rounded(r["balance"], r["currency"]),
                "amount_owed": rounded(r["amount_owed"], r["currency"]),
                "unapplied_credit": rounded(r["unapplied_credit"], r["currency"]),
            }
            for r in rows
        ]

    def _account_uuid(self, account_id: str) -> tuple[Any, str]:
        rows = self.balances_view.rows(
            "SELECT account_uuid, currency FROM {schema}.balances WHERE account_id = %s",
            (account_id,),
        )
        if not rows:
            raise AccountNotFound(account_id)
        return rows[0]["account_uuid"], rows[0]["currency"]

    def usage(self, account_id: str, month: str | None = None) -> list[dict[str, Any]]:
        account_uuid, currency = self._account_uuid(account_id)
        where = "account_uuid = %s" + (" AND month = %s" if month else "")
        params: tuple[Any, ...] = (account_uuid, month) if month else (account_uuid,)
        rows = self.usage_view.rows(
            "SELECT month, platform_emails, included_emails, charged_emails, custom_smtp_emails,"
            " late_emails, usage_amount, fee, document_number FROM {schema}.monthly_usage"
            f" WHERE {where} ORDER BY month",
            params,
        )
        tiers = self.usage_view.rows(
            "SELECT month, plan_id, tier, unit_price, emails, amount"
            " FROM {schema}.monthly_usage_tiers"
            f" WHERE {where} ORDER BY month, plan_id, tier, unit_price",
            params,
        )
        result = []
        for row in rows:
            result.append(
                {
                    "account_id": account_id,
                    **row,
                    "currency": currency,
                    "usage_amount": rounded(row["usage_amount"], currency),
                    "usage_amount_exact": str(row["usage_amount"]),
                    "fee": rounded(row["fee"], currency),
                    "tiers": [
                        {k: v for k, v in t.items() if k != "month"}
                        for t in tiers
                        if t["month"] == row["month"]
                    ],
                }
            )
        return result

    def allowance_usage(self, account_id: str, month: str | None = None) -> list[dict[str, Any]]:
        """A contacts account's allowance months (``month``: the YYYY-MM one starts in)."""
        account_uuid, currency = self._account_uuid(account_id)
        rows = self.contacts_view.rows(
            "SELECT month_index, period_start, period_end, platform_emails, custom_smtp_emails,"
            " contacts, allowance, overage_emails, billed_overage_emails, overage_unit_price"
            " FROM {schema}.allowance_usage WHERE account_uuid = %s"
            " AND (%s::text IS NULL OR to_char(period_start, 'YYYY-MM') = %s)"
            " ORDER BY month_index",
            (account_uuid, month, month),
        )
        return [{"account_id": account_id, **row, "currency": currency} for row in rows]

    def is_contacts_account(self, account_id: str) -> bool:
        return bool(
            self.contacts_view.rows(
                "SELECT 1 FROM {schema}.contact_counts WHERE account_id = %s", (account_id,)
            )
        )

    def contact_count(self, account_id: str) -> dict[str, Any]:
        rows = self.contacts_view.rows(
            "SELECT account_id, billable_contacts, changes_applied, last_change_at, updated_at"
            " FROM {schema}.contact_counts WHERE account_id = %s",
            (account_id,),
        )
        if not rows:
            raise AccountNotFound(account_id)
        return rows[0]

    def documents_of(self, account_id: str) -> list[dict[str, Any]]:
        self._account_uuid(account_id)
        return _settled(
            self.documents_view.rows(
                "SELECT number, kind, period, issued_on, due_on, currency, subtotal, tax, total,"
                " status, paid, amount_due, proforma, billable_contacts, settled_by"
                " FROM {schema}.documents WHERE account_id = %s"
                " ORDER BY issued_on, kind = 'invoice', number",
                (account_id,),
            )
        )

    def document(self, number: str) -> dict[str, Any]:
        rows = self.documents_view.rows(
            "SELECT number, account_id, kind, period, issued_on, due_on, currency, subtotal,"
            " tax_rate, tax, total, status, paid, amount_due, proforma, billable_contacts,"
            " settled_by, event_version FROM {schema}.documents WHERE number = %s",
            (number,),
        )
        if not rows:
            raise DocumentNotFound(number)
        lines = self.documents_view.rows(
            "SELECT line_no, kind, description, quantity, unit_price, amount"
            " FROM {schema}.document_lines WHERE number = %s ORDER BY line_no",
            (number,),
        )
        return {**_settled(rows)[0], "lines": lines}

    def all_documents(self) -> list[dict[str, Any]]:
        return _settled(
            self.documents_view.rows(
                "SELECT number, account_id, kind, period, issued_on, due_on, currency, subtotal,"
                " tax, total, status, paid, amount_due, proforma, settled_by FROM"
                " {schema}.documents ORDER BY kind = 'proforma', number"
            )
        )
