"""``ledger demo``: two generated months of an email API's customers, end to end.

Embedded PostgreSQL and Kafka, the real consumer, projections, closer and
status publisher. Six email accounts: prepaid and postpaid, graduated and
volume tiers, three time zones, EUR and USD, one prepaid account that runs
out of credit mid-month and tops up, one plan change, late usage, duplicates
and malformed messages. Next to them, one contacts-billed account
(``northwind``, seed 002): contacts imported, changed, deleted and re-sent,
a subscription renewed on its anniversary (the 15th), emails beyond its
allowance, proformas paid into numbered invoices. Time is simulated: the demo
publishes October, closes it, publishes November in two halves, closes
November and prints the books.
"""

from ledger.entrypoints.demo.run import run_demo

__all__ = ["run_demo"]
