"""The dedupe rows in COPY's text format: built in bulk, escaped when a value needs it."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.batch_rows import DedupeKeys, dedupe_copy_text
from commands.models import Origin

EVENT = UUID("12345678-1234-5678-1234-567812345678")


def _unescape(field: str) -> str | None:
    """How PostgreSQL reads one value of COPY's text format (the escapes we write)."""
    if field == "\\N":
        return None
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\":
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[field[i + 1]])
            i += 2
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _read(text: str) -> list[tuple[str | None, ...]]:
    assert text.endswith("\n")
    return [tuple(_unescape(f) for f in line.split("\t")) for line in text[:-1].split("\n")]


def test_plain_values_are_written_as_they_are_one_line_per_message() -> None:
    keys = [
        DedupeKeys(
            "acme",
            EVENT,
            7,
            [
                Origin("urn:mta", "e1", "billing.email-sent", 2, 40, "<1@x>"),
                Origin("urn:mta", "e2", "billing.email-sent", 2, 43, "<2@x>"),
            ],
            ["platform", "custom_smtp"],
        ),
        DedupeKeys("acme", EVENT, 8, (Origin("urn:panel", "p9", "billing.accounts", 0, 5),)),
    ]
    event = "acme\t12345678-1234-5678-1234-567812345678"
    assert dedupe_copy_text(keys) == (
        f"{event}\t7\turn:mta\te1\t<1@x>\tbilling.email-sent\t2\t40\tf\n"
        f"{event}\t7\turn:mta\te2\t<2@x>\tbilling.email-sent\t2\t43\tt\n"
        f"{event}\t8\turn:panel\tp9\t\\N\tbilling.accounts\t0\t5\t\\N\n"
    )


def test_a_value_holding_a_tab_newline_or_backslash_is_escaped() -> None:
    keys = [
        DedupeKeys(
            "ac\tme", EVENT, 1, [Origin("urn:mta", "e\\1", "t", 0, 1, "<a\nb>")], ["platform"]
        ),
        DedupeKeys("acme", EVENT, 2, [Origin("urn:mta", "e2", "t", 0, 2, message_id="c\rd")]),
    ]
    text = dedupe_copy_text(keys)
    assert text == (
        "ac\\tme\t12345678-1234-5678-1234-567812345678\t1\turn:mta\te\\\\1\t<a\\nb>\tt\t0\t1\tf\n"
        "acme\t12345678-1234-5678-1234-567812345678\t2\turn:mta\te2\tc\\rd\tt\t0\t2\t\\N\n"
    )


_value = st.text(alphabet=st.sampled_from("ab\t\n\r\\N"), min_size=1, max_size=6)


@given(
    st.lists(
        st.tuples(
            _value,
            st.booleans(),
            st.lists(st.tuples(_value, _value, st.none() | _value), min_size=1),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_postgres_reads_back_exactly_what_was_given(
    groups: list[tuple[str, bool, list[tuple[str, str, str | None]]]],
) -> None:
    """Emails (a route and a message id each) and account commands (no route, a message
    id or none), any characters in the values."""
    groups = [
        (account, emails, [(s, e, m or "<id>") if emails else (s, e, m) for s, e, m in origins])
        for account, emails, origins in groups
    ]
    keys = [
        DedupeKeys(
            account,
            EVENT,
            n,
            [Origin(s, e, "topic", n, i, m) for i, (s, e, m) in enumerate(origins)],
            ["custom_smtp" if i % 2 else "platform" for i in range(len(origins))] if emails else (),
        )
        for n, (account, emails, origins) in enumerate(groups)
    ]
    expected = [
        (
            account,
            str(EVENT),
            str(n),
            s,
            e,
            m,
            "topic",
            str(n),
            str(i),
            ("t" if i % 2 else "f") if emails else None,
        )
        for n, (account, emails, origins) in enumerate(groups)
        for i, (s, e, m) in enumerate(origins)
    ]
    assert _read(dedupe_copy_text(keys)) == expected


def test_plain_values_take_the_bulk_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The escaping path costs ~20x the bulk one a row: plain values never take it."""
    import commands.batch_rows as rows

    def escaped(_value: str | None) -> str:
        raise AssertionError("escaped a plain value")

    monkeypatch.setattr(rows, "_copy_value", escaped)
    keys = [
        DedupeKeys("acme", EVENT, 7, [Origin("urn:mta", "e1", "t", 1, 2, "<1@x>")], ["platform"]),
        DedupeKeys("acme", EVENT, 8, (Origin("urn:panel", "p9", "t", 0, 5),)),
    ]
    assert dedupe_copy_text(keys).count("\n") == 2
