"""The OpenAPI document's conventions, applied to every operation in one place (README, "The API at
a glance"), so that a client generated from the document works unmodified:

- `operationId`: the view function's name in camelCase (`create_case` → `createCase`), unless
  `OPERATION_IDS` names it (a few whose function name says too little on its own); unique across
  the document (tests/test_openapi.py holds it).
- The answers that really occur, besides `default`, all problem+json: 400 under `/api/v1` (a NUL
  anywhere, malformed JSON), 401 and 403 on every operation under the bearer token, 404 where the
  path names a resource, 413/415 where a JSON body is read, 409 on every write (a race; the
  idempotency key in flight; what the view documents), 422 where `Idempotency-Key` is honoured,
  and 503 `database-unavailable` (with `Retry-After`) wherever the database is used.
- Headers: `X-Request-Id` on every answer, `ETag` on a single resource, `Location` on a 201,
  `Idempotent-Replayed` where a key is honoured, `Retry-After` on 429 and 503; `Idempotency-Key`
  as a header parameter where it is honoured (views wrapped in `transactional(idempotent=True)`).
- Schemas: a response schema is a variant of the marshmallow schema in which every property the
  service sends is `required` (all but those named in the schema's `response_optional`), and
  load-only fields (a password) are left out; it keeps the schema's name (`Case`). The schema a
  client sends is `<Name>Input` (`CaseInput`; `…Patch` and `…Request` keep theirs), without the
  dump-only fields the service sets itself. A field's `metadata["request_only"]` holds
  constraints on what is sent only (a username's pattern: a provider's users are `oidc:…`).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import marshmallow as ma
import yaml
from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin, resolver as default_name
from apispec.ext.marshmallow.common import resolve_schema_cls
from apispec.ext.marshmallow.schema_resolver import SchemaResolver

# where the committed document says the API is: relative to wherever it was fetched from (the
# served document names CASESVC_PUBLIC_URL when that is set)
RELATIVE_SERVERS = [{"url": "/", "description": "The address the document was fetched from"}]

SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token of `POST /api/v1/auth/token`",
    },
    "calendarFeed": {
        "type": "apiKey",
        "in": "query",
        "name": "feed",
        "description": "The secret calendar address of `POST /api/v1/reminders/feed` (its `feed=`)",
    },
    "metricsToken": {"type": "http", "scheme": "bearer", "description": "`CASESVC_METRICS_TOKEN`, when that is set"},
}

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

# the single resources whose answers carry an ETag (README, "Optimistic concurrency")
ETAG_SCHEMAS = frozenset(
    {"Agency", "User", "Webhook", "Youth", "Case", "Reaction", "Event", "Note", "Consent", "Reminder"}
)
# a 201 without Location: the calendar address is the answer itself, not a resource to read
NO_LOCATION_SCHEMAS = frozenset({"CalendarFeed"})
# operations that never answer 503 database-unavailable: they use no database, or (readiness)
# document a 503 of their own
NO_DATABASE = frozenset({"service.healthz", "service.vocabulary", "service.readyz"})

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {
        "description": "The request's id, in logs and the audit trail: the caller's own when it "
        "sent a plain one (a letter or digit, then up to 63 of `A-Za-z0-9._:-`), "
        "else a new UUID",
        "schema": {"type": "string"},
    },
    "ETag": {
        "description": "The version of the resource; send it back in `If-Match` to change it",
        "required": True,
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "Where the new resource is read",
        "required": True,
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer of an earlier request with "
        "the same `Idempotency-Key` (nothing was done again)",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
}

IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Makes the request safe to retry: the same key and body within 24 hours replays the stored "
    "answer (`Idempotent-Replayed: true`) and does nothing again; another body with the same key is "
    "422; while the first request is still at work, 409 `idempotency-key-in-use` with `Retry-After`. "
    "Keys are per user.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


# the few views whose function name says too little out of its module's context
OPERATION_IDS = {
    "auth.token": "issueToken",
    "auth.revoke": "revokeToken",
    "auth.me": "getMe",
    "audit.head": "getAuditHead",
    "audit.verify": "verifyAudit",
    "audit.events": "listAuditEvents",
    "audit.export": "exportAudit",
    "audit.access_log": "getAccessLog",
    "review.audit_review": "reviewAccessLog",
    "emergency.open_access": "openEmergencyAccess",
    "emergency.list_accesses": "listEmergencyAccesses",
    "emergency.get_access": "getEmergencyAccess",
    "emergency.review_access": "reviewEmergencyAccess",
    "agency_directory.agency_directory": "listAgencyDirectory",
    "record.youth_record": "getYouthRecord",
    "service.vocabulary": "getVocabulary",
    "service.healthz": "getHealth",
    "service.readyz": "getReadiness",
    "service.metrics": "getMetrics",
    "reminders.reminders_calendar": "getRemindersCalendar",
}


def operation_id(function_name: str) -> str:
    head, *rest = function_name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


# --- schemas: what the service sends, and what a client sends -----------------------------------

RESPONSE, REQUEST = "response", "request"
_VARIANTS: dict[tuple[type, str], type] = {}


def variant(schema, side: str):
    """The schema of what the service sends (`RESPONSE`: every field it dumps is required unless
    named in `response_optional`; load-only fields left out) or of what a client sends
    (`REQUEST`: the fields the service sets itself, dump-only, left out). Nested schemas likewise."""
    if isinstance(schema, str):
        return schema
    cls = resolve_schema_cls(schema)
    if isinstance(cls, list):
        cls = cls[0]
    if getattr(cls, "_variant_of", None) is not None:
        return schema
    many = isinstance(schema, ma.Schema) and schema.many
    if (cls, side) not in _VARIANTS:
        optional = set(getattr(cls, "response_optional", ()))
        if side == RESPONSE:
            # what the service sends may grow: a response schema never forbids other properties
            # (Problem, which allows extension members, says so: additionalProperties true)
            unknown = ma.INCLUDE if cls.opts.unknown == ma.INCLUDE else ma.EXCLUDE
        else:
            unknown = cls.opts.unknown
        meta = {
            "unknown": unknown,
            **{
                option: getattr(cls.Meta, option)
                for option in ("title", "description")
                if hasattr(getattr(cls, "Meta", None), option)
            },
        }
        attrs: dict = {"_variant_of": (cls, side), "Meta": type("Meta", (), meta)}
        only, excluded = cls.opts.fields, set(cls.opts.exclude)  # Meta.fields / Meta.exclude
        for name, field in cls._declared_fields.items():
            if field.load_only if side == RESPONSE else field.dump_only:
                continue
            if (only and name not in only) or name in excluded:
                continue
            field = _nested_variants(field, side)
            if "request_only" in field.metadata:  # constraints on what is sent, not on all that is stored
                metadata = {k: v for k, v in field.metadata.items() if k != "request_only"}
                field.metadata = {**metadata, **field.metadata["request_only"]} if side == REQUEST else metadata
            if side == RESPONSE:
                field.required = name not in optional
            attrs[name] = field
        # a class of plain ma.Schema (not a subclass of `cls`): only the fields above, none inherited
        _VARIANTS[(cls, side)] = type(cls.__name__, (ma.Schema,), attrs)
    answer = _VARIANTS[(cls, side)]
    return answer(many=True) if many else answer


def _nested_variants(field: ma.fields.Field, side: str) -> ma.fields.Field:
    """A copy of `field` whose nested schemas are variants of the same side."""
    field = copy.copy(field)
    if isinstance(field, ma.fields.Nested) and not isinstance(field, ma.fields.Pluck):
        nested = field.nested
        if callable(nested) and not isinstance(nested, type):
            nested = nested()
        field.nested = variant(nested, side)
        field._schema = None
    elif isinstance(field, ma.fields.List):
        field.inner = _nested_variants(field.inner, side)
    elif isinstance(field, ma.fields.Dict) and field.value_field is not None:
        field.value_field = _nested_variants(field.value_field, side)
    return field


def schema_name(schema) -> str:
    cls = resolve_schema_cls(schema)
    if isinstance(cls, list):
        cls = cls[0]
    original, side = getattr(cls, "_variant_of", (cls, None))
    name = default_name(original)
    if side == REQUEST and not name.endswith(("Patch", "Request", "Input")):
        return name + "Input"
    return name


def _replace_schemas(holder: dict, side: str) -> None:
    for media in (holder.get("content") or {}).values():
        if isinstance(media, dict) and "schema" in media and not isinstance(media["schema"], dict):
            media["schema"] = variant(media["schema"], side)
    if "schema" in holder and not isinstance(holder["schema"], dict):  # flask-smorest's, before content
        holder["schema"] = variant(holder["schema"], side)


class _Resolver(SchemaResolver):
    def resolve_operations(self, operations, **kwargs):
        for operation in operations.values():
            if isinstance(operation, dict) and isinstance(operation.get("requestBody"), dict):
                _replace_schemas(operation["requestBody"], REQUEST)
        super().resolve_operations(operations, **kwargs)

    def resolve_response(self, response):
        if isinstance(response, dict):  # not a component's name
            _replace_schemas(response, RESPONSE)
        super().resolve_response(response)


class SchemaPlugin(MarshmallowPlugin):
    Resolver = _Resolver

    def __init__(self):
        super().__init__(schema_name_resolver=schema_name)


# --- operations ---------------------------------------------------------------------------------


def _problem(description: str, *headers: str) -> dict:
    answer = {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": dict(PROBLEM_REF)}}}
    if headers:
        answer["headers"] = {name: name for name in headers}
    return answer


# the problem answers every operation shares, by status, as components of the document
STANDARD = {
    "400": (
        "MalformedRequest",
        _problem("Malformed JSON, a NUL character in the request, or a value that cannot be stored (`bad-request`)"),
    ),
    "401": ("Unauthenticated", _problem("No valid bearer token (`unauthorized`, with `WWW-Authenticate: Bearer`)")),
    "403": ("Refused", _problem("The token lacks the scope or the role, or the access policy refuses the caller")),
    "404": ("NoSuchResource", _problem("No such resource, or one the caller may not know of (`not-found`)")),
    "413": ("BodyTooLarge", _problem("The body is over 1 MiB (`payload-too-large`)")),
    "415": ("NotJson", _problem("The body is not application/json (`unsupported-media-type`)")),
    "503": (
        "DatabaseUnavailable",
        _problem(
            "The database cannot be reached just now (`database-unavailable`); try again after `Retry-After` seconds",
            "Retry-After",
        ),
    ),
}
RACE = "Another request changed or created the same data meanwhile (`conflict`); read it again and retry"
IN_FLIGHT = (
    "A request with the same `Idempotency-Key` is still at work (`idempotency-key-in-use`); try again "
    "after `Retry-After` seconds"
)


class ConventionsPlugin(BasePlugin):
    """Applies the conventions of the module docstring to each operation as flask-smorest
    registers it. `app` is the application whose views are registered (set by the Api)."""

    app = None

    def init_spec(self, spec):
        self.spec = spec
        for name, header in HEADERS.items():
            spec.components.header(name, header)
        for name, answer in STANDARD.values():
            spec.components.response(name, copy.deepcopy(answer), lazy=True)

    def response_helper(self, response, **kwargs):
        """The components' responses (problem+json answers by status)."""
        response.setdefault("headers", {}).setdefault("X-Request-Id", "X-Request-Id")
        return response

    def operation_helper(self, path=None, operations=None, rule=None, **kwargs):
        view = self.app.view_functions.get(rule.endpoint) if (self.app is not None and rule is not None) else None
        function_name = rule.endpoint.rpartition(".")[2] if rule is not None else ""
        idempotent = bool(getattr(view, "idempotent", False))
        writes = bool(getattr(view, "writes", False))
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            if function_name:
                operation.setdefault("operationId", OPERATION_IDS.get(rule.endpoint) or operation_id(function_name))
            responses = operation["responses"] = {str(k): v for k, v in operation.get("responses", {}).items()}
            statuses = []
            if "security" not in operation:  # under the document's bearer token
                statuses += ["401", "403"]
            if re.search(r"\{[^}]+\}", path or ""):
                statuses.append("404")
            if (path or "").startswith("/api/v1/"):  # a NUL character anywhere in the request is 400
                statuses.append("400")
            if "application/json" in (operation.get("requestBody") or {}).get("content", {}):
                statuses += ["400", "413", "415"]
            if rule is not None and rule.endpoint not in NO_DATABASE:
                statuses.append("503")
            for status in dict.fromkeys(statuses):
                responses.setdefault(status, STANDARD[status][0])
            if writes:
                self._conflicts(responses, [RACE] + ([IN_FLIGHT] if idempotent else []), idempotent)
            if idempotent:
                self._idempotent(operation, responses)
            for status, answer in responses.items():
                if isinstance(answer, dict):
                    if status[0] in "45" and "content" not in answer:  # every error is a problem document
                        answer["content"] = {PROBLEM_MEDIA_TYPE: {"schema": dict(PROBLEM_REF)}}
                    self._headers(status, answer)

    @staticmethod
    def _conflicts(responses, reasons: list[str], retry_after: bool):
        """The 409 of a writing operation: what the view documents, and the conflicts every write
        may meet."""
        held = responses.get("409")
        if isinstance(held, str):  # a component's name: its description said nothing particular
            held = None
        described = [held["description"]] if held and held.get("description") else []
        parts = described + reasons
        answer = held or _problem("")
        answer["description"] = parts[0] + "".join(f"; or: {part[0].lower()}{part[1:]}" for part in parts[1:])
        if retry_after:
            answer.setdefault("headers", {})["Retry-After"] = {**HEADERS["Retry-After"], "required": False}
        responses["409"] = answer

    @staticmethod
    def _idempotent(operation, responses):
        operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_KEY))
        responses.setdefault("422", "UNPROCESSABLE_ENTITY")  # the key came with another body
        for status, answer in responses.items():
            if status.startswith("2") and isinstance(answer, dict):
                answer.setdefault("headers", {})["Idempotent-Replayed"] = "Idempotent-Replayed"

    @staticmethod
    def _headers(status: str, answer: dict):
        headers = answer.setdefault("headers", {})
        headers.setdefault("X-Request-Id", "X-Request-Id")
        if not status.startswith("2"):
            return
        ref = ((answer.get("content") or {}).get("application/json") or {}).get("schema") or {}
        schema = ref.get("$ref", "").rpartition("/")[2] if isinstance(ref, dict) else ""
        if schema in ETAG_SCHEMAS:
            headers.setdefault("ETag", "ETag")
        if status == "201" and schema not in NO_LOCATION_SCHEMAS:
            headers.setdefault("Location", "Location")


def servers(public_url: str | None) -> list[dict]:
    if public_url:
        return [{"url": public_url, "description": "This service (CASESVC_PUBLIC_URL)"}]
    return RELATIVE_SERVERS


def spec_yaml() -> str:
    """The document as committed in openapi/openapi.yaml: the same whatever the exporting host's
    CASESVC_PUBLIC_URL, so its `servers` is the relative default."""
    from casesvc.extensions import api

    document = dict(api.spec.to_dict(), servers=RELATIVE_SERVERS)
    return yaml.safe_dump(document, sort_keys=True, allow_unicode=True, width=100)
