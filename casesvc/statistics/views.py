"""Statistics for the municipal action plan (README "Statistics"): JSON, CSV and the printable report."""

from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint

from casesvc.auth.principal import current_principal
from casesvc.statistics import report, service
from casesvc.statistics.schemas import ReportQuery, StatisticsQuery, StatisticsSchema
from casesvc.web import json_response

blp = Blueprint(
    "statistics",
    __name__,
    url_prefix="/api/v1/statistics",
    description="Aggregates for the municipal action plan, with disclosure control",
)

# the report is a document on its own: no script, nothing fetched, styles only inline
REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def _wants_csv(args) -> bool:
    if args.get("format"):
        return args["format"] == "csv"
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


@blp.route("", methods=["GET"])
@blp.arguments(StatisticsQuery(), location="query")
@blp.response(200, StatisticsSchema)
@blp.doc(
    responses={
        "200": {
            "content": {"application/json": {"schema": StatisticsSchema}, "text/csv": {"schema": {"type": "string"}}},
            "description": "JSON, or with `Accept: text/csv` / `format=csv` the same figures "
            "in long form: `period,measure,dimension,value`",
        }
    }
)
def get_statistics(args):
    """Counts and waits per period and for the whole window (coordinator, admin; `statistics:read`)"""
    first, last = service.window(args)
    csv = _wants_csv(args)
    answer = service.statistics(
        current_principal(), args["municipality"], first, last, args["period"], "csv" if csv else "json"
    )
    if csv:
        response = Response("".join(service.csv_lines(answer)), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="casesvc-statistics.csv"'
        return response
    return json_response(service.answer_body(answer))


@blp.route("/report", methods=["GET"])
@blp.arguments(ReportQuery(), location="query")
@blp.doc(
    responses={
        "200": {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "A printable page in bokmål: tables and inline SVG charts",
        }
    }
)
def get_report(args):
    """The year's figures of one municipality as a printable page for the action plan"""
    first, last = service.year_window(args["year"])
    answer = service.statistics(current_principal(), [args["municipality"]], first, last, "quarter", "html")
    response = Response(report.render(answer), mimetype="text/html")
    response.headers["Content-Security-Policy"] = REPORT_POLICY
    return response
