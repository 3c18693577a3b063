"""Stored plan terms: the cached, pre-expanded encoding writes the same bytes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)

from ledger.application.transcodings import (
    MODELS,
    LedgerTranscoder,
    ModelAsDict,
    register_ledger_transcodings,
)
from ledger.emails.pricing import Charge
from ledger.emails.usage import MonthStanding, UsageEntry
from ledger.money import Money
from ledger.periods import Month
from ledger.plans import Catalogue, EmailPlan, Tier

PLANS = Path(__file__).resolve().parents[2] / "plans"


def _transcoder(*, expanded: bool = True) -> JSONTranscoder:
    transcoder = LedgerTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    register_ledger_transcodings(transcoder)
    if not expanded:  # each model's fields handed to the encoder as they are
        for model in MODELS:
            if model is not EmailPlan and model is not Tier:  # stored as lists
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


def test_email_plan_terms_are_stored_as_one_list_and_come_back_shared() -> None:
    transcoder = _transcoder()
    plan = next(p for p in Catalogue.load(PLANS) if p.id == "email-starter")
    encoded = transcoder.encode({"plan": plan})
    assert encoded == (
        b'{"plan":{"_type_":"email_plan","_data_":["email-starter","Email Starter","EUR",'
        b'"10.00",1000,"graduated",[[10000,"0.0010"],[100000,"0.0008"],[null,"0.0005"]]]}}'
    )
    first, second = transcoder.decode(encoded)["plan"], transcoder.decode(encoded)["plan"]
    assert first == plan and second is first
    assert str(first.tiers[0].unit_price) == "0.0010"


def test_email_plan_terms_stored_as_objects_still_decode() -> None:
    plan = next(p for p in Catalogue.load(PLANS) if p.id == "email-starter")
    old = _transcoder()
    old.register(ModelAsDict(EmailPlan, old))  # how plans were stored before
    stored = old.encode({"plan": plan})
    assert b'"_type_":"EmailPlan"' in stored
    assert _transcoder().decode(stored) == {"plan": plan}


def test_a_value_of_an_unknown_kind_is_refused_as_the_library_refuses_it() -> None:
    with pytest.raises(TranscodingNotRegisteredError, match="'nope' is not deserializable"):
        _transcoder().decode(b'{"x":{"_type_":"nope","_data_":1}}')
    # objects that only look like an encoded value are left as they are
    assert _transcoder().decode(b'{"_type_":"month","other":1}') == {"_type_": "month", "other": 1}


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
