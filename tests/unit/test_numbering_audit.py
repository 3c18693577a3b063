"""The numbering rule an auditor checks: each allocated number on exactly one document."""

from __future__ import annotations

from ledger.numbering import audit_numbers


def test_numbers_each_on_one_document_are_sound() -> None:
    issued = [("2026-000001", "acme"), ("2026-000002", "globex"), ("PF-acme-0001", "acme")]
    found = audit_numbers(2026, 2, issued)
    assert found.sound
    assert (found.gaps, found.duplicates, found.unallocated) == ([], {}, [])


def test_a_missing_number_a_duplicate_and_one_never_allocated_are_each_named() -> None:
    issued = [
        ("2026-000001", "acme (3)"),
        ("2026-000003", "acme (5)"),
        ("2026-000003", "globex (2)"),
        ("2026-000005", "initech (1)"),
        ("2025-000002", "acme (1)"),  # another year: not this audit's
    ]
    found = audit_numbers(2026, 4, issued)
    assert not found.sound
    assert found.gaps == ["2026-000002", "2026-000004"]
    assert found.duplicates == {"2026-000003": ["acme (5)", "globex (2)"]}
    assert found.unallocated == ["2026-000005"]


def test_a_year_without_numbers_is_sound_and_a_document_in_it_is_unallocated() -> None:
    assert audit_numbers(2027, 0, []).sound
    assert audit_numbers(2027, 0, [("2027-000001", "acme")]).unallocated == ["2027-000001"]
