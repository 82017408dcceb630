"""Caller text, shown safely: the one way a value a caller sent is quoted into an error or an audit entry.

A refusal that repeats what it refuses must not become the attack: a 60 KiB operator id quoted four
times into a message, and that message written to the append-only audit log, once turned each call into
megabytes on disk. So a quoted value is cut to a fixed number of characters (beyond them: its length and
SHA-256, so an auditor can still tell two long values apart and match one against a copy), and every
character that could hide, reorder or forge text on a terminal (controls, bidi overrides, zero-width and
other format characters, line separators, surrogates, unassigned code points) is shown as ``<U+XXXX>``.
The result holds no such character, so bounding it again changes nothing (idempotent while it fits).
"""

from __future__ import annotations

import hashlib
import unicodedata

__all__ = ["AUDIT_DETAIL_CHARS", "AUDIT_FIELD_CHARS", "QUOTE_CHARS", "bounded", "bounded_length", "quoted"]

QUOTE_CHARS = 64
"""Characters of a caller's value quoted in an error message."""
AUDIT_FIELD_CHARS = 128
"""Characters of an audit entry's actor, terminal or target."""
AUDIT_DETAIL_CHARS = 512
"""Characters of an audit entry's detail (a refusal's message, counts, ranges)."""

_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_ESCAPE_CHARS = len("<U+10FFFF>")
_DIGEST_NOTE_CHARS = len("…[9999999999 characters, SHA-256 ]") + 64


def _escaped(ch: str) -> str:
    if unicodedata.category(ch) in _HIDDEN:
        return f"<U+{ord(ch):04X}>"
    return ch


def bounded(value: str, max_chars: int = QUOTE_CHARS) -> str:
    """``value`` with hidden characters escaped, cut after about ``max_chars`` characters; a value that
    was cut ends with ``…[N characters, SHA-256 <hex>]`` of the whole original. Never longer than
    :func:`bounded_length` (``max_chars``)."""
    out: list[str] = []
    used = 0
    for ch in value:
        shown = _escaped(ch)
        if used + len(shown) > max_chars:
            digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
            return "".join(out) + f"…[{len(value)} characters, SHA-256 {digest}]"
        out.append(shown)
        used += len(shown)
    return "".join(out)


def bounded_length(max_chars: int) -> int:
    """The most characters :func:`bounded` returns for ``max_chars``."""
    return max_chars + _DIGEST_NOTE_CHARS


def quoted(value: str, max_chars: int = QUOTE_CHARS) -> str:
    """``'value'`` for an error message: :func:`bounded`, in single quotes."""
    return f"'{bounded(value, max_chars)}'"
