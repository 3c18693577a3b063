"""JSON Schemas of the message contract, generated from the pydantic models.

The schemas shipped under ``schemas/`` (one ``<stem>.schema.json`` per message
type) are generated, never edited by hand: ``ledger schemas`` rewrites them and
a unit test fails when they are stale.

- ``input.*``: the CloudEvents the ledger consumes (``consumers.messages``),
  described as the ledger *validates* them (``mode="validation"``: what a
  producer may send; extra fields are tolerated).
- ``outbound.*``: the messages the ledger produces (account status changes,
  suspensions, collection requests, notices, dead letters, chain heads),
  described as the ledger *serialises* them (``mode="serialization"``: what a
  subscriber receives).

This is an entry-point helper, not a domain module: it reaches into
``consumers/`` and ``projections/``, but only inside functions, so that
``import ledger.entrypoints.schemas`` stays light and the domain never imports the edges.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic.json_schema import GenerateJsonSchema

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic_core import core_schema

    #: File stem -> model (computed on first access; see ``__getattr__``).
    SCHEMA_MODELS: dict[str, type[BaseModel]]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_PREFIX = "urn:billing-ledger:"
SUFFIX = ".schema.json"
INPUT_PREFIX = "input."
OUTBOUND_PREFIX = "outbound."


def _models() -> dict[str, type[BaseModel]]:
    """File stem -> model, in a fixed order (inputs, then outbound)."""
    # Imported here, not at the top: the edges (and eventsourcing, kafka) load on use only.
    from consumers.dead_letter import DeadLetter
    from consumers.messages import (
        AccountClosedEvent,
        AccountOpenedEvent,
        ContactChangedEvent,
        ContactDeletedEvent,
        CreditPurchasedEvent,
        EmailSentEvent,
        PaymentFailedEvent,
        PaymentSucceededEvent,
        PlanChangedEvent,
    )
    from projections.chain_heads import ChainHeadPublished
    from projections.payments_outbox import (
        CollectionRequestedMessage,
        NoticeMessage,
        SuspensionMessage,
    )
    from projections.status_publisher import AccountStatusChanged

    return {
        "input.email.sent": EmailSentEvent,
        "input.account.opened": AccountOpenedEvent,
        "input.account.credit-purchased": CreditPurchasedEvent,
        "input.account.plan-changed": PlanChangedEvent,
        "input.account.closed": AccountClosedEvent,
        "input.contact.changed": ContactChangedEvent,
        "input.contact.deleted": ContactDeletedEvent,
        "input.payment.succeeded": PaymentSucceededEvent,
        "input.payment.failed": PaymentFailedEvent,
        "outbound.account.status-changed": AccountStatusChanged,
        "outbound.dead-letter": DeadLetter,
        "outbound.audit.chain-head": ChainHeadPublished,
        "outbound.collection.requested": CollectionRequestedMessage,
        "outbound.notice": NoticeMessage,
        "outbound.account.suspension": SuspensionMessage,
    }


def _schema_models() -> dict[str, type[BaseModel]]:
    models: dict[str, type[BaseModel]] | None = globals().get("SCHEMA_MODELS")
    if models is None:
        models = globals()["SCHEMA_MODELS"] = _models()
    return models


def __getattr__(name: str) -> Any:
    # PEP 562: ``SCHEMA_MODELS`` imports consumers/ and projections/ on first use only.
    if name == "SCHEMA_MODELS":
        return _schema_models()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _ContractSchema(GenerateJsonSchema):
    """Outbound messages are dumped whole (``model_dump(mode="json")``): a field
    with a default is still always present, so the serialisation schema marks
    it required, as subscribers can rely on it."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        if self.mode == "serialization" and field.get("serialization_exclude_if") is None:
            return True
        return super().field_is_required(field, total)


def _mode(stem: str) -> Literal["validation", "serialization"]:
    if stem.startswith(INPUT_PREFIX):
        return "validation"
    if stem.startswith(OUTBOUND_PREFIX):
        return "serialization"
    raise ValueError(
        f"schema stem {stem!r} starts with neither {INPUT_PREFIX!r} nor {OUTBOUND_PREFIX!r}"
    )


def schema(stem: str, model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one model, with ``$schema`` and ``$id``."""
    document = model.model_json_schema(mode=_mode(stem), schema_generator=_ContractSchema)
    document["$schema"] = JSON_SCHEMA_DIALECT
    document["$id"] = f"{ID_PREFIX}{stem}"
    return document


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """File name -> JSON text (indent 2, sorted keys, trailing newline); deterministic."""
    return {
        f"{stem}{SUFFIX}": _dumps(schema(stem, model)) for stem, model in _schema_models().items()
    }


def write(folder: Path) -> list[Path]:
    """Write every schema into ``folder`` and remove generated files no longer generated.

    Returns the paths of the files written (all of them, changed or not).
    """
    folder.mkdir(parents=True, exist_ok=True)
    generated = generate()
    written: list[Path] = []
    for name, text in generated.items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    for path in folder.glob(f"*{SUFFIX}"):
        if path.name not in generated:
            path.unlink()
    return written


def stale(folder: Path) -> list[str]:
    """Names of files in ``folder`` that are missing, differ, or are no longer generated."""
    generated = generate()
    names = [
        name
        for name, text in generated.items()
        if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != text
    ]
    if folder.is_dir():
        names += [p.name for p in folder.glob(f"*{SUFFIX}") if p.name not in generated]
    return sorted(names)
