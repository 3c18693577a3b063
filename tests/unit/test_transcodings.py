"""Stored plan terms: the cached, pre-expanded encoding writes the same bytes."""

from __future__ import annotations

from pathlib import Path

from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

from ledger.application.transcodings import MODELS, ModelAsDict, register_ledger_transcodings
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
