"""The agency directory: `GET /api/v1/agencies/directory` (README: The agency directory).

A front-end adding participants to a case needs the codes of the agencies that can take part;
`GET /agencies` is for administrators and shows more than that. The directory shows each
agency's code, kind, name and municipalities, nothing about its users or webhook, to whoever
`policy.agency_directory_reach` lets in, newest first and paginated like every list."""

from __future__ import annotations

import functools

import marshmallow as ma
from flask_smorest import Blueprint
from sqlalchemy import String, cast, or_, select

from casesvc.access import enforce
from casesvc.agencies.models import Agency
from casesvc.agencies.schemas import AgencyQuery
from casesvc.audit.service import note
from casesvc.auth.principal import current_principal
from casesvc.common.pagination import Keyset, page_schema
from casesvc.common.schemas import Code
from casesvc.policy import Principal, agency_directory_reach
from casesvc.vocabulary import AGENCY_KINDS

blp = Blueprint(
    "agency_directory",
    __name__,
    url_prefix="/api/v1/agencies",
    description="The agency directory: codes, kinds, names and municipalities, for staff",
)

_KEYSET = Keyset(Agency.created_at, Agency.code)  # as GET /agencies: (created_at, code)


class AgencyDirectoryEntrySchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "What `participants` and `lead_agency` name"})
    kind = Code(AGENCY_KINDS, required=True)
    name = ma.fields.String(required=True)
    municipalities = ma.fields.List(
        ma.fields.String(), required=True, metadata={"description": "Every municipality the agency serves"}
    )


def serving_any(municipalities: frozenset[str]):
    """Agencies serving at least one of `municipalities`. The column holds a JSON list
    (`["0301", "4601"]`) on SQLite and PostgreSQL alike; a municipality number is four digits,
    so its quoted form matches that element of the text and nothing else."""
    listed = cast(Agency.municipalities, String)
    return or_(*[listed.like(f'%"{number}"%') for number in sorted(municipalities)])


def directory_page(principal: Principal, args: dict) -> dict:
    decision, municipalities = agency_directory_reach(principal)
    enforce(decision)
    numbers = None if municipalities is None else frozenset(m for m in municipalities if len(m) == 4 and m.isdigit())
    note(resource_type="agency")
    if numbers is not None and not numbers:
        return {"items": [], "next_cursor": None}
    stmt = select(Agency)
    if numbers is not None:
        stmt = stmt.where(serving_any(numbers))
    if args.get("kind"):
        stmt = stmt.where(Agency.kind == args["kind"])
    page = _KEYSET.fetch(stmt, args["limit"], args.get("cursor"))
    note(ids=[agency.code for agency in page["items"]])
    return page


def _directory_readers(view):
    """The policy's decision before the query is parsed, as every view does."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        enforce(agency_directory_reach(current_principal())[0])
        return view(*args, **kwargs)

    return wrapper


@blp.route("/directory", methods=["GET"])
@_directory_readers
@blp.arguments(AgencyQuery(), location="query")
@blp.response(200, page_schema(AgencyDirectoryEntrySchema))
def agency_directory(args):
    """The agencies serving at least one of your agency's municipalities (admin and auditor:
    every agency), newest first; `kind` filters"""
    return directory_page(current_principal(), args)
