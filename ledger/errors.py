"""The ledger's error hierarchy: every refusal the domain makes has a name."""


class LedgerError(Exception):
    """Base of every business-rule refusal. Its message is shown to users as is."""


class AccountNotFound(LedgerError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"unknown account {account_id!r}")
        self.account_id = account_id


class AccountAlreadyOpen(LedgerError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"account {account_id!r} is already open")


class AccountClosed(LedgerError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"account {account_id!r} is closed")


class UnknownPlan(LedgerError):
    def __init__(self, plan_id: str) -> None:
        super().__init__(f"unknown plan {plan_id!r}")


class PlanNotAllowed(LedgerError):
    """The plan exists but cannot be used the way it was asked for."""


class InvalidAmount(LedgerError):
    pass


class DocumentNotFound(LedgerError):
    def __init__(self, number: str) -> None:
        super().__init__(f"no invoice or receipt numbered {number!r}")


class CloseTimeInFuture(LedgerError):
    """Closing as of a time that has not come: documents are numbered and irreversible."""

    def __init__(self, as_of: str, latest: str) -> None:
        super().__init__(
            f"cannot close periods as of {as_of}: that is later than the clock"
            f" allows ({latest}, LEDGER_MAX_FUTURE_SKEW included)"
        )


class NegativeGrace(LedgerError):
    """A negative grace would document a month before it ended."""

    def __init__(self, grace: str) -> None:
        super().__init__(f"the close grace must not be negative: {grace}")


class InvariantBroken(Exception):
    """A rule the ledger's own state must always satisfy does not hold: a bug or corruption.

    Deliberately not a :class:`LedgerError`: a refusal is the input's fault and is
    dead-lettered; this is ours, so it stops the process (restart, don't limp)
    instead of dead-lettering the message that happened to reveal it.
    """
