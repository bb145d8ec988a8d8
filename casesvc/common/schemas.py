"""Field types shared by the schemas."""
import marshmallow as ma

from casesvc.common.timeutil import rfc3339


class Body(ma.Schema):
    """A creating request body: fields the service sets itself (id, status, author, …) and
    fields it does not know are ignored ("extra fields are allowed everywhere").
    PATCH bodies use plain ma.Schema and refuse them: what cannot be changed is never
    silently dropped."""

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
    """An instant: RFC 3339 in UTC out (`2027-01-05T08:00:00Z`); a zone is required in."""

    def _serialize(self, value, attr, obj, **kwargs):
        return rfc3339(value)
