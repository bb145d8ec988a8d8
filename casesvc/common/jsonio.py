"""Request bodies that must not reach the views as they are: JSON nested too deeply to parse,
text holding the NUL character (PostgreSQL cannot store it; SQLite would, so it is refused the
same way on both, before anything reads it), and text holding half of a UTF-16 surrogate pair
(`\ud800` alone: Python's JSON parser takes it, but it is not a character, and no UTF-8
database can store it)."""

from __future__ import annotations

import json
import re
from typing import cast

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

from casesvc.common.messages import _

NUL_DETAIL = _("Text may not contain the NUL character (\\u0000).")

# In JSON text NUL is a raw 0x00 byte or the escape \u0000 (hex digits have no case here: they
# are all zeros). `\\u0000` is an escaped backslash followed by "u0000": the escape counts only
# after an odd number of backslashes.
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def query_has_nul(query: bytes) -> bool:
    """Whether a raw query string holds NUL, sent as is or percent-encoded."""
    return b"%00" in query or b"\x00" in query


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


class JSONText:
    """JSON already written (by the database, for one): a response holding it embeds it as is."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


_COMPACT = {"separators": (",", ":")}  # orjson's own way
# what orjson leaves to Flask's `default` (an instant as Flask writes it, a dataclass as a dict)
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with two changes.

    Responses are written by orjson, a tenth of the standard library's CPU on a list of cases,
    as UTF-8 (RFC 8259 §8.1) rather than `\\u` escapes; the keys keep their order (`sort_keys` is
    off: the schema's order, `id` first, as documented), and what orjson does not write itself
    goes to Flask's `default`. What orjson refuses (an integer beyond 64 bits, text holding half
    a surrogate pair) is written by the standard library as before. Pretty-printing (`sort_keys`,
    `compact`, or Flask's debug mode) is the standard library's too.

    Nesting too deep for the parser is malformed JSON (a ValueError, which `request.get_json`
    answers as bad JSON) rather than a RecursionError."""

    sort_keys = False

    def _orjson(self, obj, kwargs: dict) -> bytes | None:
        """`obj` as orjson writes it, or None where the standard library must."""
        pretty = self.compact is False or (self.compact is None and self._app.debug)
        if (kwargs and kwargs != _COMPACT) or self.sort_keys or pretty:
            return None
        try:
            return orjson.dumps(obj, default=self._orjson_default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return None

    def _orjson_default(self, obj):
        return orjson.Fragment(obj.text) if isinstance(obj, JSONText) else self.default(obj)

    @staticmethod
    def default(o):
        """Flask's, and JSON already written (`JSONText`) read back for the standard library."""
        return json.loads(o.text) if isinstance(o, JSONText) else DefaultJSONProvider.default(o)

    def dumps(self, obj, **kwargs) -> str:
        encoded = self._orjson(obj, kwargs)
        return encoded.decode() if encoded is not None else super().dumps(obj, **kwargs)

    def response(self, *args, **kwargs):
        obj = self._prepare_response_obj(args, kwargs)
        encoded = self._orjson(obj, {})
        if encoded is None:
            return super().response(*args, **kwargs)
        response_class = cast(type[Response], self._app.response_class)  # typed as werkzeug's sans-IO one
        return response_class(encoded + b"\n", mimetype=self.mimetype)

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc
