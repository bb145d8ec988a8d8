from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint

from casesvc.access import enforce
from casesvc.audit import review
from casesvc.auth.principal import current_principal
from casesvc.common.messages import _
from casesvc.common.schemas import Instant
from casesvc.errors import field_error
from casesvc.policy import check_audit_reader

blp = Blueprint("review", __name__, url_prefix="/api/v1", description="The access-log review")


class ReviewQuery(ma.Schema):
    from_ = Instant(data_key="from", metadata={"description": "Inclusive; default: 31 days before `to`"})
    to = Instant(metadata={"description": "Exclusive; default: now"})


class ReviewSettingsSchema(ma.Schema):
    bulk_reads = ma.fields.Integer()
    off_hours = ma.fields.String(allow_none=True)
    probes = ma.fields.Integer()


class ReviewResultSchema(ma.Schema):
    from_ = ma.fields.String(data_key="from")
    to = ma.fields.String()
    settings = ma.fields.Nested(ReviewSettingsSchema)
    findings = ma.fields.List(
        ma.fields.Dict(),
        metadata={
            "description": "Each with `kind` (emergency_access, bulk_read, off_hours, probing), `actor`, "
            "`actor_agency`, `at` and the ids involved; never names or free text"
        },
    )


@blp.route("/audit/review", methods=["GET"])
@blp.arguments(ReviewQuery(), location="query")
@blp.response(200, ReviewResultSchema)
def audit_review(args):
    """The findings of the access-log review in the window (auditor, admin)"""
    enforce(check_audit_reader(current_principal()))
    start, end = review.window(args.get("from_"), args.get("to"))
    if start >= end:
        raise field_error("from", _("Must be before `to`."))
    result = review.review(start, end)
    return {**result, "from_": result.pop("from")}
