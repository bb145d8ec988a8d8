"""Field types shared by the schemas."""

import unicodedata
from datetime import UTC, timedelta

import marshmallow as ma

from casesvc.common.messages import _
from casesvc.common.timeutil import OSLO, add_years, oslo_today, rfc3339, utcnow

# Business dates and instants (reactions, signatures, consents, events, reminders) lie within
# this many years of today; birth dates are not in the future nor more than BIRTH_YEARS back
# (README: Security, hardening). Whatever the worker computes from them stays far inside the
# calendar.
BUSINESS_YEARS = 10
BIRTH_YEARS = 100


class Body(ma.Schema):
    """A request body, creating or PATCH: fields the service sets itself (id, status, author, …),
    fields that never change after creation (a youth's national_id, an agency's code) and fields
    it does not know are ignored ("extra fields are allowed everywhere"), so a client may send
    back what it read. A known field with a bad value is still 422. PATCH never changes a
    status: that goes through the transitions endpoint."""

    class Meta:
        unknown = ma.EXCLUDE


class Code(ma.fields.String):
    """A code from the vocabulary; the OpenAPI document lists the allowed values."""

    def __init__(self, choices, **kwargs):
        self.choices = tuple(choices)
        # a code that may be null lists null among its values too (JSON Schema checks enum first)
        metadata = {
            "enum": list(self.choices) + ([None] if kwargs.get("allow_none") else []),
            **kwargs.pop("metadata", {}),
        }
        super().__init__(validate=ma.validate.OneOf(self.choices), metadata=metadata, **kwargs)


class Municipality(ma.fields.String):
    def __init__(self, **kwargs):
        # ASCII digits only: `\d` would take full-width and other scripts' digits too
        super().__init__(
            validate=ma.validate.Regexp(r"^[0-9]{4}$", error=_("Must be a 4-digit municipality number.")), **kwargs
        )


class TransitionSchema(Body):
    to = ma.fields.String(required=True)
    reason = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=2000))


class WholeNumber(ma.fields.Integer):
    """An integer as JSON Schema has it: 30 or 30.0, never 1.5 (nor true, nor "30"). What the
    document's `type: integer` allows is what is accepted."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super()._deserialize(value, attr, data, **kwargs)


class Instant(ma.fields.AwareDateTime):
    """An instant: RFC 3339 in UTC out (`2027-01-05T08:00:00Z`); a zone is required in, and the
    value is held in UTC. An instant that has no UTC or Europe/Oslo time within years 1-9999
    (`0001-01-01T00:00:00+01:00`) is a validation error, not a failure deeper down."""

    default_error_messages = {
        "out_of_range": _("Out of range: must fall within the years 1 to 9999 in UTC and in Europe/Oslo.")
    }

    def _deserialize(self, value, attr, data, **kwargs):
        instant = super()._deserialize(value, attr, data, **kwargs)
        try:
            instant.astimezone(OSLO)  # business dates are Oslo dates
            return instant.astimezone(UTC)
        except OverflowError as exc:
            raise self.make_error("out_of_range") from exc

    def _serialize(self, value, attr, obj, **kwargs):
        return rfc3339(value)


class BusinessDate(ma.fields.Date):
    """A date of the work (a reaction's start or end, a signature, a consent): within
    BUSINESS_YEARS of today's date in Oslo."""

    default_error_messages = {"window": _("Must be within %(years)s years of today.", years=BUSINESS_YEARS)}

    def __init__(self, **kwargs):
        super().__init__(
            metadata=_bounded(kwargs.pop("metadata", {}), f"within {BUSINESS_YEARS} years of today"), **kwargs
        )

    def _deserialize(self, value, attr, data, **kwargs):
        day = super()._deserialize(value, attr, data, **kwargs)
        today = oslo_today()
        if not add_years(today, -BUSINESS_YEARS) <= day <= add_years(today, BUSINESS_YEARS):
            raise self.make_error("window")
        return day


def _bounded(metadata: dict, window: str) -> dict:
    """The field's description in the OpenAPI document, with the window its values must lie in."""
    metadata = dict(metadata)
    given = metadata.get("description")
    metadata["description"] = f"{given}; {window}" if given else window.capitalize()
    return metadata


class BirthDate(ma.fields.Date):
    default_error_messages = {
        "window": _("Must not be in the future nor more than %(years)s years ago.", years=BIRTH_YEARS)
    }

    def __init__(self, **kwargs):
        super().__init__(
            metadata=_bounded(
                kwargs.pop("metadata", {}), f"not in the future nor more than {BIRTH_YEARS} years ago (Oslo)"
            ),
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs):
        day = super()._deserialize(value, attr, data, **kwargs)
        today = oslo_today()
        if not add_years(today, -BIRTH_YEARS) <= day <= today:
            raise self.make_error("window")
        return day


class BusinessInstant(Instant):
    """An instant of the work (an event, a conversation, a reminder's due time): within
    BUSINESS_YEARS of now."""

    default_error_messages = {"window": _("Must be within %(years)s years of now.", years=BUSINESS_YEARS)}

    def __init__(self, **kwargs):
        super().__init__(
            metadata=_bounded(kwargs.pop("metadata", {}), f"within {BUSINESS_YEARS} years of now"), **kwargs
        )

    def _deserialize(self, value, attr, data, **kwargs):
        instant = super()._deserialize(value, attr, data, **kwargs)
        now = utcnow()
        if abs(instant - now) > timedelta(days=365 * BUSINESS_YEARS + 3):
            raise self.make_error("window")
        return instant


def _visible(text: str) -> str:
    """`text` without whitespace and invisible format characters (zero-width space, …)."""
    return "".join(c for c in text if not c.isspace() and unicodedata.category(c) != "Cf")


class Name(ma.fields.String):
    """A person's name: stored without surrounding whitespace, and more than whitespace and
    invisible characters."""

    default_error_messages = {"blank": _("Must not be blank.")}

    def __init__(self, max_length: int = 200, **kwargs):
        super().__init__(validate=ma.validate.Length(min=1, max=max_length), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not _visible(text):
            raise self.make_error("blank")
        return text


def bounded_list(inner, most: int, **kwargs) -> ma.fields.List:
    """A list of at most `most` items (422 on the field beyond)."""
    validators = [ma.validate.Length(max=most)]
    if "validate" in kwargs:
        extra = kwargs.pop("validate")
        validators += extra if isinstance(extra, list) else [extra]
    return ma.fields.List(inner, validate=validators, **kwargs)
