"""Stored plan terms: the cached, pre-expanded encoding writes the same bytes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

from ledger.application.transcodings import MODELS, ModelAsDict, register_ledger_transcodings
from ledger.emails.pricing import Charge
from ledger.emails.usage import MonthStanding, UsageEntry
from ledger.money import Money
from ledger.periods import Month
from ledger.plans import Catalogue

PLANS = Path(__file__).resolve().parents[2] / "plans"


def _transcoder(*, expanded: bool) -> JSONTranscoder:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    register_ledger_transcodings(transcoder)
    if not expanded:  # each model's fields handed to the encoder as they are
        for model in MODELS:
            transcoder.register(ModelAsDict(model))
    return transcoder


def test_every_catalogue_plan_is_stored_as_the_same_bytes_expanded_or_not() -> None:
    plans = list(Catalogue.load(PLANS))
    expanded, plain = _transcoder(expanded=True), _transcoder(expanded=False)
    assert len(plans) == 5
    for plan in plans:
        # Twice in one event, as a usage event carries it: the second comes from the cache.
        state = {"plan": plan, "segment": {"plan": plan}}
        assert expanded.encode(state) == plain.encode(state)
        assert expanded.decode(expanded.encode(state)) == {"plan": plan, "segment": {"plan": plan}}


def test_usage_values_are_stored_flat_and_come_back_equal() -> None:
    transcoder = _transcoder(expanded=True)
    charges = (Charge("email-starter", 2, Decimal("0.0010"), 3530),)
    entry = UsageEntry(Month(2026, 1), False, 12000, 3, 1000, charges, 1)
    standing = MonthStanding(Month(2026, 1), 12000, 1000, 3, Money.of("10.00", "EUR"), charges)
    opening = MonthStanding(Month(2026, 2), 0, 0, 0, None, ())
    state = {"entry": entry, "standings": (standing, opening)}
    encoded = transcoder.encode(state)
    assert b'"_data_":["email-starter",2,"0.0010",3530]' in encoded
    assert transcoder.decode(encoded) == {"entry": entry, "standings": [standing, opening]}


def test_a_charge_stored_as_an_object_still_decodes() -> None:
    stored = (
        b'{"_type_":"Charge","_data_":{"plan_id":"email-starter","tier":1,'
        b'"unit_price":{"_type_":"decimal_str","_data_":"0.0010"},"count":200}}'
    )
    charge = _transcoder(expanded=True).decode(stored)
    assert charge == Charge("email-starter", 1, Decimal("0.0010"), 200)
    assert str(charge.unit_price) == "0.0010"
