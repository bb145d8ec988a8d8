from datetime import date

import marshmallow as ma

from casesvc.common.messages import _
from casesvc.common.schemas import Code, Municipality
from casesvc.statistics.periods import UNITS

_DATES = ma.validate.Range(
    min=date(1900, 1, 1), max=date(2999, 12, 31), error=_("Must be a date from 1900-01-01 to 2999-12-31.")
)


class StatisticsQuery(ma.Schema):
    municipality = ma.fields.List(
        Municipality(),
        load_default=list,
        metadata={"description": "May repeat; default: every municipality the caller may see"},
    )
    from_ = ma.fields.Date(
        data_key="from",
        validate=_DATES,
        metadata={"description": "First day (Europe/Oslo) of the window; default 1 January of `to`'s year"},
    )
    to = ma.fields.Date(validate=_DATES, metadata={"description": "Last day of the window, included; default today"})
    period = Code(UNITS, load_default="year")
    format = Code(("json", "csv"), metadata={"description": "Overrides the Accept header (`text/csv` for CSV)"})


class ReportQuery(ma.Schema):
    municipality = Municipality(required=True)
    year = ma.fields.Integer(required=True, strict=False, validate=ma.validate.Range(min=1900, max=2999))


class PeriodFiguresSchema(ma.Schema):
    period = ma.fields.String(metadata={"description": "`2027`, `2027-Q1`, `2027-01`, or `all` for the whole window"})
    from_ = ma.fields.String(data_key="from", metadata={"description": "First day, clipped to the window"})
    to = ma.fields.String(metadata={"description": "Last day, clipped to the window"})
    measures = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(allow_none=True)),
        metadata={"description": "measure → dimension → value; null where suppressed"},
    )


class SuppressedSchema(ma.Schema):
    period = ma.fields.String()
    measure = ma.fields.String()
    dimension = ma.fields.String()
    reason = Code(("small", "complementary", "total", "small_n"))


class StatisticsSchema(ma.Schema):
    municipalities = ma.fields.List(
        ma.fields.String(), allow_none=True, metadata={"description": "null: every municipality (admin)"}
    )
    from_ = ma.fields.String(data_key="from")
    to = ma.fields.String()
    period = Code(UNITS)
    min_cell = ma.fields.Integer(metadata={"description": "CASESVC_STATISTICS_MIN_CELL: smaller counts are not shown"})
    generated_at = ma.fields.String()
    periods = ma.fields.List(ma.fields.Nested(PeriodFiguresSchema))
    suppressed = ma.fields.List(ma.fields.Nested(SuppressedSchema))
