"""What the payments tests share: the policy the plans ship with, a zone with daylight
saving, a proforma's reference."""

from __future__ import annotations

from ledger.payments.policy import DunningPolicy

POLICY = DunningPolicy(retry_after_days=(1, 3, 5, 7), suspend_after_days_overdue=14)
AMS = "Europe/Amsterdam"
REF = "PF-a-0001"
