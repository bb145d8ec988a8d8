"""Request bodies that must not reach the views as they are: JSON nested too deeply to parse,
and text holding the NUL character (PostgreSQL cannot store it; SQLite would, so it is refused
the same way on both, before anything reads it)."""
from __future__ import annotations

import re

from flask.json.provider import DefaultJSONProvider

NUL_DETAIL = "Text may not contain the NUL character (\\u0000)."

# In JSON text NUL is a raw 0x00 byte or the escape \u0000 (hex digits have no case here: they
# are all zeros). `\\u0000` is an escaped backslash followed by "u0000": the escape counts only
# after an odd number of backslashes.
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def json_has_nul(body: bytes) -> bool:
    """Whether a JSON body holds NUL anywhere, in a key or a value, without parsing it."""
    if b"\x00" in body:
        return True
    return b"\\u0000" in body and _ESCAPED_NUL.search(body) is not None


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with nesting too deep for the parser being malformed JSON (a ValueError,
    which `request.get_json` answers as bad JSON) rather than a RecursionError."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc
