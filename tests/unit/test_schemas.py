"""The JSON Schemas shipped under ``schemas/`` are generated and current."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from consumers.dead_letter import DeadLetter, dead_letter_message
from consumers.messages import EmailSentEvent, Record
from ledger.entrypoints import schemas

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"

SAMPLE_EMAIL_SENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "mta-7f3a",
    "source": "//mta.example/eu-1",
    "type": "email.sent",
    "time": "2025-03-01T12:00:00Z",
    "data": {"account_id": "acc-1", "message_id": "msg-1", "route": "platform"},
}


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SCHEMAS_DIR / name).read_text(encoding="utf-8"))
    return document


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/$defs/"), ref
    resolved: dict[str, Any] = document["$defs"][ref.removeprefix("#/$defs/")]
    return resolved


def test_shipped_schemas_are_current() -> None:
    outdated = schemas.stale(SCHEMAS_DIR)
    assert not outdated, (
        f"JSON Schemas under {SCHEMAS_DIR} are stale or missing: {', '.join(outdated)}. "
        "Run `ledger schemas` (or `make schemas`) and commit the result."
    )


def test_every_message_type_has_a_schema() -> None:
    assert set(schemas.generate()) == {
        "input.email.sent.schema.json",
        "input.account.opened.schema.json",
        "input.account.credit-purchased.schema.json",
        "input.account.plan-changed.schema.json",
        "input.account.closed.schema.json",
        "input.contact.changed.schema.json",
        "input.contact.deleted.schema.json",
        "input.payment.succeeded.schema.json",
        "input.payment.failed.schema.json",
        "outbound.account.status-changed.schema.json",
        "outbound.audit.chain-head.schema.json",
        "outbound.dead-letter.schema.json",
        "outbound.collection.requested.schema.json",
        "outbound.notice.schema.json",
        "outbound.account.suspension.schema.json",
    }
    assert set(schemas.SCHEMA_MODELS) == {
        name.removesuffix(".schema.json") for name in schemas.generate()
    }


def test_generation_is_deterministic_and_identified() -> None:
    first, second = schemas.generate(), schemas.generate()
    assert first == second
    for name, text in first.items():
        assert text.endswith("}\n")
        document = json.loads(text)
        assert text == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert document["$id"] == "urn:billing-ledger:" + name.removesuffix(".schema.json")


def test_email_sent_schema_describes_the_contract() -> None:
    document = _load("input.email.sent.schema.json")
    assert {"specversion", "id", "source", "type", "time", "data"} <= set(document["required"])
    assert document["properties"]["type"]["const"] == "email.sent"
    assert document["properties"]["specversion"]["const"] == "1.0"
    assert document["properties"]["time"]["format"] == "date-time"
    assert document.get("additionalProperties", True) is True  # extra fields are tolerated
    data = _resolve(document, document["properties"]["data"])
    assert {"account_id", "message_id", "route"} <= set(data["required"])
    assert sorted(data["properties"]["route"]["enum"]) == ["custom_smtp", "platform"]
    # The sample is valid for the model the schema was generated from.
    EmailSentEvent.model_validate(SAMPLE_EMAIL_SENT)


def test_sample_email_sent_validates_against_the_shipped_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    document = _load("input.email.sent.schema.json")
    jsonschema.Draft202012Validator.check_schema(document)
    jsonschema.Draft202012Validator(document).validate(SAMPLE_EMAIL_SENT)
    broken = {**SAMPLE_EMAIL_SENT, "data": {"account_id": "acc-1", "route": "platform"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(document).validate(broken)


@pytest.mark.parametrize(
    ("value", "encoding"),
    [(json.dumps(SAMPLE_EMAIL_SENT).encode(), "utf-8"), (b"\xff\xfe not utf-8", "base64")],
)
def test_dead_letter_model_matches_the_runner_message(value: bytes, encoding: str) -> None:
    record = Record("billing.email-sent", 3, 42, b"acc-1", value)
    raw = dead_letter_message(record, "not JSON: boom")
    assert set(json.loads(raw)) == set(DeadLetter.model_fields)
    letter = DeadLetter.model_validate_json(raw)
    assert (letter.topic, letter.partition, letter.offset, letter.key) == (
        "billing.email-sent",
        3,
        42,
        "acc-1",
    )
    assert letter.payload_encoding == encoding
    keyless = Record("t", 0, 0, None, value)
    assert DeadLetter.model_validate_json(dead_letter_message(keyless, "r")).key is None
    required = _load("outbound.dead-letter.schema.json")["required"]
    assert set(required) == set(DeadLetter.model_fields)


def test_outbound_fields_with_defaults_are_still_required() -> None:
    document = _load("outbound.account.status-changed.schema.json")
    assert {"specversion", "id", "source", "type", "time", "data"} <= set(document["required"])


def test_stale_reports_missing_changed_and_obsolete_files(tmp_path: Path) -> None:
    assert schemas.stale(tmp_path / "absent") == sorted(schemas.generate())
    written = schemas.write(tmp_path)
    assert sorted(p.name for p in written) == sorted(schemas.generate())
    assert schemas.stale(tmp_path) == []
    (tmp_path / "input.email.sent.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "outbound.dead-letter.schema.json").unlink()
    (tmp_path / "input.payment.sent.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "notes.json").write_text("{}\n", encoding="utf-8")  # not ours: ignored
    assert schemas.stale(tmp_path) == [
        "input.email.sent.schema.json",
        "input.payment.sent.schema.json",
        "outbound.dead-letter.schema.json",
    ]
    schemas.write(tmp_path)
    assert schemas.stale(tmp_path) == []
    assert not (tmp_path / "input.payment.sent.schema.json").exists()
    assert (tmp_path / "notes.json").exists()


def test_importing_the_module_does_not_load_the_edges() -> None:
    code = (
        "import sys, ledger.entrypoints.schemas\n"
        "loaded = [m for m in ('consumers.messages', 'projections.status_publisher', 'kafka')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=SCHEMAS_DIR.parent)


@pytest.mark.parametrize(
    ("stem", "field", "good", "bad"),
    [
        ("input.account.credit-purchased", "amount", "25.00", ["1_000", " 7 ", "-5", "1e3"]),
        ("input.account.opened", "tax_rate", "0.21", ["1", "0.2_1", " 0.21"]),
        ("input.account.opened", "currency", "EUR", ["eur", "XYZ"]),
        ("input.email.sent", "account_id", "acme", [" acme", "ac\nme", "\u200bacme", "x" * 257]),
    ],
)
def test_shipped_schemas_state_the_strict_forms(
    stem: str, field: str, good: str, bad: list[str]
) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    document = _load(f"{stem}.schema.json")
    data_schema = _resolve(document, document["properties"]["data"])
    validator = jsonschema.Draft202012Validator(data_schema["properties"][field])
    assert validator.is_valid(good)
    assert [value for value in bad if validator.is_valid(value)] == []


def test_shipped_schema_refuses_a_time_without_an_offset() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    document = _load("input.email.sent.schema.json")
    validator = jsonschema.Draft202012Validator(document)
    assert validator.is_valid(SAMPLE_EMAIL_SENT)
    for time in ("2025-03-01T12:00:00", "2025-03-01T12:00Z", "1741780800"):
        assert not validator.is_valid({**SAMPLE_EMAIL_SENT, "time": time}), time
