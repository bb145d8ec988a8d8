"""The caller's language (README "The API at a glance": languages).

Problem documents — `title`, `detail` and the `errors` messages — are written in English and
translated into bokmål when the request asks for it with `Accept-Language` (`nb`, `nb-NO`, `no`,
`nn`; q-values are honoured). English is the default and the fallback; the `type` never changes.
The translations are gettext catalogues in casesvc/translations (`make messages` refreshes them
from the code, `make install` compiles them), read by flask-babel.

What is translated:
- the service's own messages, marked with casesvc.common.messages._ (a str that keeps its msgid
  and values), translated with their values in place;
- marshmallow's and werkzeug's plain English strings, which carry no msgid: the ones they can
  send are listed here (MARSHMALLOW_MESSAGES), and a message is matched against them by its text.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import flask_babel
from babel.messages.mofile import read_mo
from flask import Flask, Response, current_app, has_request_context, request

from casesvc.common.messages import N_, Message

LANGUAGES = ("en", "nb")
DEFAULT_LANGUAGE = "en"
# Norwegian in any of its tags gets bokmål: `no` is Norwegian unspecified, and a reader of
# nynorsk (`nn`) reads bokmål more readily than English.
_TAGS = {"en": "en", "nb": "nb", "no": "nb", "nn": "nb"}


def negotiate(accepted: list[tuple[str, float]]) -> str:
    """The language of the answer for an Accept-Language header's (tag, q) pairs (RFC 9110
    §12.5.4): the acceptable language of the highest q (the header's order among equals), by its
    primary subtag; `*` is the default unless the header refuses it (q=0)."""
    refused = {_TAGS.get(tag.split("-")[0].lower()) for tag, q in accepted if q <= 0}
    for tag, q in sorted(accepted, key=lambda item: -item[1]):  # sorted() is stable: header order among equals
        if q <= 0:
            continue
        if tag == "*":
            wildcard = [language for language in (DEFAULT_LANGUAGE, *LANGUAGES) if language not in refused]
            if wildcard:
                return wildcard[0]
            continue
        language = _TAGS.get(tag.split("-")[0].lower())
        if language is not None:
            return language
    return DEFAULT_LANGUAGE


def select_locale() -> str | None:
    """flask-babel's locale selector: the request's language; outside a request (the command
    line, the worker) the default."""
    if not has_request_context():
        return None
    return negotiate(list(request.accept_languages))


def current_language() -> str:
    locale = flask_babel.get_locale()
    return str(locale) if locale is not None else DEFAULT_LANGUAGE


def localize(text: Any) -> Any:
    """`text` in the caller's language: a Message through its msgid (its values too, when they
    are messages), a plain string when it is one the catalogue knows (a title, one of
    marshmallow's messages); anything else as it is."""
    if isinstance(text, Message):
        _check_known(text.msgid)
        params = {name: localize(value) if isinstance(value, Message) else value for name, value in text.params.items()}
        return flask_babel.gettext(text.msgid, **params)
    if not isinstance(text, str):
        return text
    if text in _catalogue_ids():
        return flask_babel.gettext(text)
    for pattern, msgid in _PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return flask_babel.gettext(msgid, **match.groupdict())
    _check_known(text)
    return text


CATALOGUES = Path(__file__).parent / "translations"


@functools.cache
def _catalogue_ids() -> frozenset[str]:
    """The msgids of the bokmål catalogue (whatever the caller's language): how a plain string is
    known to be a message (a title, one of marshmallow's) rather than text of no catalogue."""
    try:
        with open(CATALOGUES / "nb" / "LC_MESSAGES" / "messages.mo", "rb") as mo:
            return frozenset(message.id for message in read_mo(mo) if isinstance(message.id, str) and message.id)
    except OSError:
        return frozenset()


def _check_known(text: str) -> None:
    """Tests collect the client-visible texts that no catalogue holds (tests/conftest.py fails
    the test that sent one), so a message left unmarked or untranslated cannot go unseen."""
    unknown = current_app.extensions.get("casesvc.i18n.unknown")
    if unknown is not None and text not in _catalogue_ids():
        unknown.append(text)


def localize_errors(errors: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {field: [localize(message) for message in messages] for field, messages in errors.items()}


def mark_response(response: Response) -> Response:
    """A translated answer says its language, and that it depends on Accept-Language (caches)."""
    response.headers["Content-Language"] = current_language()
    response.vary.add("Accept-Language")
    return response


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(CATALOGUES))
    flask_babel.Babel(app, locale_selector=select_locale, configure_jinja=False)
    if not _catalogue_ids():
        app.logger.warning(
            "the bokmål catalogue is not compiled (%s): every answer is in English; `make install` compiles it",
            CATALOGUES / "nb" / "LC_MESSAGES" / "messages.mo",
        )


# marshmallow's own messages (fields' default_error_messages, the validators' messages, the
# schema's), which reach clients in `errors`; written as msgids, with marshmallow's `{name}` as
# `%(name)s`. tests/test_i18n.py checks that every message of the installed marshmallow is here.
MARSHMALLOW_MESSAGES = (
    N_("Missing data for required field."),
    N_("Field may not be null."),
    N_("Invalid value."),
    N_("Invalid input."),
    N_("Invalid input type."),
    N_("Invalid type."),
    N_("Unknown field."),
    N_("Not a valid string."),
    N_("Not a valid utf-8 string."),
    N_("Not a valid integer."),
    N_("Not a valid number."),
    N_("Number too large."),
    N_("Special numeric values (nan or infinity) are not permitted."),
    N_("Not a valid boolean."),
    N_("Not a valid date."),
    N_("Not a valid datetime."),
    N_("Not a valid time."),
    N_("Not a valid aware datetime."),
    N_("Not a valid naive datetime."),
    N_("Not a valid aware date."),
    N_("Not a valid naive date."),
    N_("Not a valid aware time."),
    N_("Not a valid naive time."),
    N_("Not a valid period of time."),
    N_("Not a valid list."),
    N_("Not a valid tuple."),
    N_("Not a valid mapping type."),
    N_("Not a valid UUID."),
    N_("Not a valid email address."),
    N_("Not a valid URL."),
    N_("Not a valid IP address."),
    N_("Not a valid IPv4 address."),
    N_("Not a valid IPv6 address."),
    N_("Not a valid IP interface."),
    N_("Not a valid IPv4 interface."),
    N_("Not a valid IPv6 interface."),
    N_("String does not match expected pattern."),
    N_("Must be one of: %(choices)s."),
    N_("Must be equal to %(other)s."),
    N_("One or more of the choices you made was not in: %(choices)s."),
    N_("One or more of the choices you made was in: %(values)s."),
    N_("Shorter than minimum length %(min)s."),
    N_("Longer than maximum length %(max)s."),
    N_("Length must be between %(min)s and %(max)s."),
    N_("Length must be %(equal)s."),
    N_("Must be greater than or equal to %(min)s."),
    N_("Must be greater than %(min)s."),
    N_("Must be less than or equal to %(max)s."),
    N_("Must be less than %(max)s."),
    N_("Must be greater than or equal to %(min)s and less than or equal to %(max)s."),
    N_("Must be greater than or equal to %(min)s and less than %(max)s."),
    N_("Must be greater than %(min)s and less than or equal to %(max)s."),
    N_("Must be greater than %(min)s and less than %(max)s."),
    N_('"%(input)s" cannot be formatted as a date.'),
    N_('"%(input)s" cannot be formatted as a datetime.'),
    N_('"%(input)s" cannot be formatted as a time.'),
    N_("%(input)s cannot be formatted as a timedelta."),
)

_PLACEHOLDER = re.compile(r"%\\\((\w+)\\\)s")


def _pattern(msgid: str) -> re.Pattern[str]:
    return re.compile(_PLACEHOLDER.sub(lambda m: f"(?P<{m.group(1)}>.+?)", re.escape(msgid)), re.DOTALL)


# the messages with values, matched by their text; the longer first, so that the most specific
# wins ("Must be greater than 1 and less than 5." is not "Must be greater than %(min)s.")
_PATTERNS = tuple(
    (_pattern(msgid), msgid) for msgid in sorted((m for m in MARSHMALLOW_MESSAGES if "%(" in m), key=len, reverse=True)
)
