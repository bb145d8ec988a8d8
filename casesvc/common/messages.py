"""Client-visible messages, marked for translation (README "The API at a glance": languages).

`_("Agency %(code)s does not serve municipality %(municipality)s.", code=…, municipality=…)`
is the English text, a `str` like any other (logs, the command line and every test read it so),
that also keeps its message id and its values. The answer that carries it translates it into
the caller's language (casesvc.i18n.localize), from the gettext catalogues in
casesvc/translations. Nothing here needs a request or Flask: a pure module (the policy) marks its
messages too.

Values are given by name (gettext placeholders `%(name)s`), never joined onto the text, so a
translation may put them where its language wants them.
"""

from __future__ import annotations

from typing import Any


class Message(str):
    """The English text of a message, with its msgid and values for translating it later."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, **params: Any) -> Message:
        text = super().__new__(cls, msgid % params if params else msgid)
        text.msgid = msgid
        text.params = params
        return text

    def format(self, *args: Any, **kwargs: Any) -> str:
        """marshmallow formats every error message (`{input}`, `{choices}`) before raising it;
        a message of ours has no such fields, and stays a Message through that."""
        formatted = str.format(self, *args, **kwargs)
        return self if formatted == self else formatted


def _(msgid: str, **params: Any) -> Message:
    """Mark a client-visible message (extracted into the catalogue by `make messages`)."""
    return Message(msgid, **params)


def N_(msgid: str) -> str:
    """Mark a message whose translation is looked up later by its text (a table of titles, the
    marshmallow messages): extracted into the catalogue, returned unchanged."""
    return msgid
