"""Request bodies that must not reach the views as they are: JSON nested too deeply to parse,
text holding the NUL character (PostgreSQL cannot store it; SQLite would, so it is refused the
same way on both, before anything reads it), and text holding half of a UTF-16 surrogate pair
(`\ud800` alone: Python's JSON parser takes it, but it is not a character, and no UTF-8
database can store it)."""

from __future__ import annotations

import re

from flask.json.provider import DefaultJSONProvider

from casesvc.common.messages import _

NUL_DETAIL = _("Text may not contain the NUL character (\\u0000).")

# In JSON text NUL is a raw 0x00 byte or the escape \u0000 (hex digits have no case here: they
# are all zeros). `\\u0000` is an escaped backslash followed by "u0000": the escape counts only
# after an odd number of backslashes.
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def json_has_nul(body: bytes) -> bool:
    """Whether a JSON body holds NUL anywhere, in a key or a value, without parsing it."""
    if b"\x00" in body:
        return True
    return b"\\u0000" in body and _ESCAPED_NUL.search(body) is not None


SURROGATE_DETAIL = _("Text may not contain an unpaired surrogate (\\ud800-\\udfff without its other half).")

# One escape of a JSON string: a backslash and what it escapes (`\uXXXX`, or one character).
# Scanning escape by escape keeps the backslashes paired: `\\ud800` is an escaped backslash
# followed by the text "ud800", no escape at all.
_ESCAPE = re.compile(rb"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def json_has_lone_surrogate(body: bytes) -> bool:
    """Whether a JSON body holds a surrogate escape that is not half of a pair (a high one
    directly followed by a low one). In valid UTF-8 a surrogate can only come as an escape."""
    if _SURROGATE_ESCAPE.search(body) is None:
        return False
    high_ends_at = None  # where a high surrogate's escape ended, waiting for its low half
    for match in _ESCAPE.finditer(body):
        escaped = match.group(1)
        unit = int(escaped[1:], 16) if escaped[:1] == b"u" else None
        if high_ends_at is not None:
            if match.start() != high_ends_at or unit is None or not 0xDC00 <= unit <= 0xDFFF:
                return True
            high_ends_at = None
        elif unit is not None and 0xD800 <= unit <= 0xDBFF:
            high_ends_at = match.end()
        elif unit is not None and 0xDC00 <= unit <= 0xDFFF:
            return True
    return high_ends_at is not None


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with nesting too deep for the parser being malformed JSON (a ValueError,
    which `request.get_json` answers as bad JSON) rather than a RecursionError."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc
