"""Field types shared by the schemas."""
from datetime import timezone

import marshmallow as ma

from casesvc.common.timeutil import OSLO, rfc3339


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
        metadata = {"enum": list(self.choices), **kwargs.pop("metadata", {})}
        super().__init__(validate=ma.validate.OneOf(self.choices), metadata=metadata, **kwargs)


class Municipality(ma.fields.String):
    def __init__(self, **kwargs):
        super().__init__(validate=ma.validate.Regexp(r"^\d{4}$", error="Must be a 4-digit municipality number."),
                         **kwargs)


class TransitionSchema(Body):
    to = ma.fields.String(required=True)
    reason = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=2000))


class Instant(ma.fields.AwareDateTime):
    """An instant: RFC 3339 in UTC out (`2027-01-05T08:00:00Z`); a zone is required in, and the
    value is held in UTC. An instant that has no UTC or Europe/Oslo time within years 1-9999
    (`0001-01-01T00:00:00+01:00`) is a validation error, not a failure deeper down."""

    default_error_messages = {"out_of_range": "Out of range: must fall within the years 1 to 9999 "
                                              "in UTC and in Europe/Oslo."}

    def _deserialize(self, value, attr, data, **kwargs):
        instant = super()._deserialize(value, attr, data, **kwargs)
        try:
            instant.astimezone(OSLO)  # business dates are Oslo dates
            return instant.astimezone(timezone.utc)
        except OverflowError as exc:
            raise self.make_error("out_of_range") from exc

    def _serialize(self, value, attr, obj, **kwargs):
        return rfc3339(value)
