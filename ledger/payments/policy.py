"""The collection and dunning policy: data (``plans/dunning.toml``), validated once.

``retry_after_days`` are the days after the *first* failed attempt on which the
ledger asks for the money again (``[1, 3, 5, 7]``: four retries, five attempts
in all); ``suspend_after_days_overdue`` is how long a document the customer
pays by transfer (a postpay invoice) may stay unpaid past its due date before
the account is suspended.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DunningPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    retry_after_days: tuple[int, ...]
    suspend_after_days_overdue: int = Field(gt=0)

    @model_validator(mode="after")
    def _check(self) -> DunningPolicy:
        days = list(self.retry_after_days)
        if any(day <= 0 for day in days):
            raise ValueError("retry_after_days must be whole days after the first failure, > 0")
        if days != sorted(set(days)):
            # Offsets count from the first failure: a repeat or a step back is a typo.
            raise ValueError("retry_after_days must strictly increase")
        return self

    @property
    def attempts(self) -> int:
        """The first attempt and every retry."""
        return 1 + len(self.retry_after_days)
