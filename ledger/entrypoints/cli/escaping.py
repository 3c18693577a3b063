"""Upstream text on a terminal: shown, never obeyed.

Everything printed that came from upstream (account, contact and message ids,
plan names, reasons, document numbers) goes through :func:`safe` first: rich
would read ``[bold]`` in an account id as markup (and crash on ``evil[/]``),
and a terminal would obey the escape sequences in it.
"""

from __future__ import annotations

import re

#: C0 controls, DEL, C1 controls (ESC and CSI among them), and the Unicode
#: line separators and bidirectional overrides that make a terminal show text
#: other than what it is.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: object) -> str:
    """``value`` as text with every control character shown as an escape (``\\x1b``)."""
    return _CONTROL.sub(_visible, str(value))


#: A ``[`` with the backslashes before it, and whether rich would read a tag there.
_BRACKET = re.compile(r"(\\*)\[(?=([a-z#/@][^\[]*?\])?)")
_TRAILING_BACKSLASHES = re.compile(r"(\\+)$")


def _escape_bracket(match: re.Match[str]) -> str:
    backslashes, tag_like = match.group(1), match.group(2)
    if tag_like:  # rich halves the backslashes before a tag; an odd count escapes it
        return backslashes * 2 + "\\["
    # Elsewhere rich turns one backslash and a bracket into the bracket.
    return backslashes + "\\[" if backslashes else "["


def safe(value: object) -> str:
    """``value`` as rich markup that renders exactly as :func:`clean` text.

    (``rich.markup.escape`` alone loses a backslash before a bracket that is not
    a tag, and one of an even run at the end.) Trailing backslashes are doubled,
    as rich halves them before the tag that may follow; a lone fragment is closed
    by :func:`ledger.entrypoints.cli.tables.cell`. The consoles printing it have emoji codes off
    (``:warning:`` stays text).
    """
    escaped = _BRACKET.sub(_escape_bracket, clean(value))
    return _TRAILING_BACKSLASHES.sub(lambda m: m.group(1) * 2, escaped)
