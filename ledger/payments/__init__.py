"""Money in (issue 11), as pure rules over the domain's values: which open
document a payment settles and what becomes the account's unapplied credit
(``allocation``), when the ledger asks for the money again after a failure
(``schedule``, from the ``[dunning]`` policy that is data: ``policy``), the
account's dunning state (``dunning``) and the payment-failure notices
(``notices``). No Kafka, SQL or eventsourcing here: the aggregates call these
functions and record what they decide as events (docs/payments.md)."""
