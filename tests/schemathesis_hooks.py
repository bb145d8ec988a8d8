"""Schemathesis hooks for the API conformance run (README, "Development": "API conformance").

Two things live here, next to schemathesis.toml, and nowhere else:

- `status_explicitly_documented`: a check of our own. The document keeps a `default` problem answer
  on every operation, which would make Schemathesis' own status check accept any status; this one
  asks that the status of every answer be listed by the operation itself.
- `accepted_rejections`: the few answers to schema-valid input that are right although the document
  cannot say why in JSON Schema. Each rule names the field, the service's message and the reason.
  Anything else the service rejects while the document allows it is a finding.
"""

from __future__ import annotations

import re

import schemathesis
from schemathesis.core.failures import Failure

NOT_YET_LISTED: set[tuple[str, int]] = set()  # (operation, status) the document does not list yet: none


@schemathesis.check
def status_explicitly_documented(ctx, response, case):
    """Every status the service answers is listed by the operation, not only covered by `default`."""
    if case.method.upper() != case.operation.method.upper():
        return None  # a method the path does not have: Schemathesis' `unsupported_method` judges the 405
    listed = {str(code) for code in case.operation.definition.raw.get("responses", {}) if str(code) != "default"}
    status = str(response.status_code)
    if status in listed or f"{status[0]}XX" in listed or (case.operation.label, response.status_code) in NOT_YET_LISTED:
        return None
    raise Failure(
        operation=case.operation.label,
        title="Undocumented status",
        message=f"{status} is not listed by {case.operation.label} (only `default` covers it); "
        f"listed: {', '.join(sorted(listed)) or 'none'}",
    )


# (field, the service's message as a regular expression, why a schema-valid value may get it).
# Each is a rule JSON Schema cannot state; the README and the field's description state it.
_REFERENCE = "names another record: whether it exists and stands where the rule needs it is no schema's to say"
_WINDOW = "business dates lie within a window around today (README, bounded dates); a schema has no 'today'"
_BETWEEN = "a rule between two fields or parameters"
_STATE = "depends on what the record holds now"
ACCEPTED_422 = [
    (
        "cursor",
        r"Not a cursor this service issued\.",
        "cursors are opaque and signed: only one the service issued is valid, and no generator can make one",
    ),
    (
        r"[\w.]+",
        r"Not a valid (date|datetime|email address)\.",
        "`format` is an annotation in JSON Schema 2020-12 (OpenAPI 3.1): Schemathesis may send any string as a valid "
        "one, where the service checks the format",
    ),
    (r"[\w.]+", r"Must be within 10 years of (today|now)\.", _WINDOW),
    ("birth_date", r"Must not be in the future nor more than 100 years ago\.", _WINDOW),
    (r"from|to", r"Must be a date from 1900-01-01 to 2999-12-31\.", _WINDOW),
    ("until", r"Must be in the future\.", _WINDOW),
    ("from", r"The window is at most 10 years\.", _BETWEEN),
    ("from", r"Must be before `to`\.", _BETWEEN),
    ("to", r"Must not be before from\.", _BETWEEN),
    (r"(consent\.)?expires_on", r"A consent given needs an end date\.|Must not be before given_on\.", _BETWEEN),
    (r"(consent\.)?expires_on", r"The consent has already expired\.", _WINDOW),
    (
        r"(consent\.)?given_by",
        r"A youth under \d+ needs a guardian's consent .*",
        "depends on the youth's age on given_on",
    ),
    (
        r"ends_on|probation_ends_on",
        r"Must not be before starts_on\.|\w+ lasts at most \d+ years from starts_on\.",
        _BETWEEN,
    ),
    ("result", r"A drug test needs a result\.|Only a drug test has a result\.", _BETWEEN),
    (r"conditions\.\d+\.kind", r"A \w+ condition needs a legal basis other than consent .*", _BETWEEN),
    ("ends_on", r"A contract needs an end date\.", _BETWEEN),
    ("reason", r"A reason is required to move a \w+ to \w+\.", _BETWEEN),
    ("national_id", r"Not a valid fødselsnummer or D-number: .*", "the two check digits (modulus 11)"),
    (r"national_id|birth_date", r"The national id's day, month and year and the birth date do not match\.", _BETWEEN),
    ("youth_id", r"No such youth\.", _REFERENCE),
    ("agency", r"no agency '.*'", _REFERENCE),
    (
        r"[\w.]+",
        r"Must not be blank\.|name must not be empty",
        "a name needs a visible character (README: Hardening); spaces and invisible characters are told apart by "
        "Unicode categories, which no portable JSON Schema pattern states",
    ),
    ("reaction_id", r"No such reaction in this case\.", _REFERENCE),
    ("condition_id", r"No such condition in this case\.|The condition belongs to another reaction\.", _REFERENCE),
    ("corrects", r"No such \w+.*", _REFERENCE),
    ("coordinator", r"Must be an active user of a participating agency\.", _REFERENCE),
    (r"[\w.]+", r"Unknown agency .*", _REFERENCE),
    (r"[\w.]+", r"Agency .* does not serve municipality \d+\.", _REFERENCE),
    (
        "municipality",
        r"Your agency does not serve this municipality\.|The case is already in this municipality\.",
        _REFERENCE,
    ),
    ("lead_agency", r"A case is opened by its lead agency: this must be your own agency\.", _REFERENCE),
    ("participants", r"The lead agency cannot leave its own case\.|Agency .*", _REFERENCE),
    ("to", r"The new lead must take part in the case\.|This agency already leads the case\.", _REFERENCE),
    (
        r"assignee_agency|conditions\.\d+\.responsible_agency",
        r"Must be an agency participating in the case\.",
        _REFERENCE,
    ),
    ("assignee_user", r"Must be an active user of the assignee agency\.", _REFERENCE),
    ("agencies", r"Not participating in the case: .*", _REFERENCE),
    (
        "agency",
        r"agency is required for an? \w+ user|agency must be left out: an? \w+ \w+ belongs to no agency",
        _BETWEEN,
    ),
    ("code", r"agency '[\w-]+' already exists", _STATE),
    ("username", r".*already exists.*|.*is taken.*", _STATE),
    (
        "url",
        r"Not a valid URL\.|The URL needs a host\.|Credentials do not belong.*|A webhook URL has no fragment\.",
        "the scheme is the document's pattern; a URL's host, port, credentials and fragment are the service's to judge",
    ),
    ("agency", r"role '\w+' does not match agency '[\w-]+' of kind '\w+'", _BETWEEN),
    (r"scheduled_at|held_at", r"Only a concern conversation is scheduled or held\.", _BETWEEN),
    ("signed_on", r"A signature cannot be dated in the future\.", _WINDOW),
    (
        "Idempotency-Key",
        r"This key was used with another request \(another endpoint or body\)\.",
        "the same key with another body is 422 (README: Idempotency-Key); the generator reuses keys",
    ),
    ("party", r"The \w+ has already signed this reaction\.", _STATE),
    ("signatures", r"Each party signs once\.", "items of one list must differ in one field"),
]


def _accepted(field: str, messages: list) -> bool:
    return all(
        any(
            re.fullmatch(name, field) and re.fullmatch(pattern, str(message), re.DOTALL)
            for name, pattern, _ in ACCEPTED_422
        )
        for message in messages
    )


# The token request's fields required per grant (and revoke's non-empty token) are in the
# operation's description, not its schema: a oneOf per grant breaks the form body of clients generated
# by openapi-python-client (tests/clients), so a schema-valid request can still miss one (400, RFC 6749)
OAUTH_400_NOT_YET_DOCUMENTED = re.compile(r"\w+( and \w+)? (is|are) required\.")
# A literal path beside a templated one: PATCH /api/v1/agencies/{code} answers for the code
# "directory" too, and GET /api/v1/reminders/{reminder_id} for "feed" (a 404: no reminder has that
# id), so `Allow` rightly names those methods on the literal paths as well
LITERAL_BESIDE_TEMPLATE = ("/api/v1/agencies/directory", "/api/v1/reminders/feed")


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keep every failure but those accepted above, each for its reason."""
    if failure.code == "ST202" and response.status_code == 400 and case.operation.path == "/api/v1/auth/token":
        try:
            if response.json().get("error") == "invalid_grant":
                return False  # a generated password or refresh token is a wrong one (RFC 6749: 400 invalid_grant)
        except ValueError:
            return True
    if failure.code == "ST302" and case.operation.path == "/api/v1/agencies/{code}/webhook":
        return False  # a new agency has no webhook yet: that is made by PUT, not by creating the agency
    if failure.code == "ST205" and case.operation.path in LITERAL_BESIDE_TEMPLATE:
        return False
    if (
        failure.code == "ST202"
        and response.status_code == 400
        and case.operation.path in ("/api/v1/auth/token", "/api/v1/auth/revoke")
    ):
        try:
            return not OAUTH_400_NOT_YET_DOCUMENTED.fullmatch(response.json().get("error_description") or "")
        except ValueError:
            return True
    if failure.code != "ST202" or response.status_code != 422:
        return True
    try:
        errors = response.json().get("errors") or {}
    except ValueError:
        return True
    return not (errors and all(_accepted(field, messages) for field, messages in errors.items()))
