"""Statistics: who may see which municipalities' figures (casesvc/policy.py), the window and its
periods, the queries, the rule, and the audit note (the parameters, never a figure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app

from casesvc import audit
from casesvc.access import enforce
from casesvc.common.messages import _
from casesvc.common.timeutil import add_years, oslo_today, rfc3339, utcnow
from casesvc.errors import field_error
from casesvc.policy import Principal, statistics_access
from casesvc.statistics import figures, queries
from casesvc.statistics.periods import Period, periods

MAX_YEARS = 10  # the longest window: 120 months


@dataclass
class Answer:
    municipalities: tuple[str, ...] | None
    first: date
    last: date
    unit: str
    min_cell: int
    generated_at: datetime
    figures: figures.Figures


def window(args: dict, today: date | None = None) -> tuple[date, date]:
    """`from` and `to` (Europe/Oslo dates, both included); by default from 1 January to today."""
    today = today or oslo_today()
    last = args.get("to") or today
    first = args.get("from_") or date(last.year, 1, 1)
    if first > last:
        raise field_error("to", _("Must not be before from."))
    if add_years(first, MAX_YEARS) <= last:
        raise field_error("from", _("The window is at most %(years)s years.", years=MAX_YEARS))
    return first, last


def _note(municipalities, first: date, last: date, unit: str, fmt: str) -> None:
    params = [f"municipality={m}" for m in municipalities]
    params += [f"from={first.isoformat()}", f"to={last.isoformat()}", f"period={unit}", f"format={fmt}"]
    audit.note(resource_type="statistics", ids=params)


def statistics(
    principal: Principal, municipalities: list[str], first: date, last: date, unit: str, fmt: str = "json"
) -> Answer:
    """The figures the caller may see; 403 for a municipality outside their reach."""
    _note(sorted(set(municipalities)), first, last, unit, fmt)
    decision = statistics_access(principal, tuple(municipalities))
    enforce(decision)
    scope = queries.Scope(decision.municipalities, first, last, unit)
    with queries.snapshot():
        rows = figures.Rows(
            cases_opened=queries.cases_opened(scope),
            reactions_started=queries.reactions_started(scope),
            reactions_ended=queries.reactions_ended(scope),
            drug_tests=queries.drug_tests(scope),
            openings_and_closings=queries.openings_and_closings(scope),
            days_to_first_reaction=queries.days_to_first_reaction(scope),
            days_to_first_event=queries.days_to_first_event(scope),
        )
    min_cell = current_app.config["CASESVC"].statistics_min_cell
    built = figures.build(periods(first, last, unit), Period("all", first, last), rows, min_cell)
    return Answer(decision.municipalities, first, last, unit, min_cell, utcnow(), built)


def answer_body(answer: Answer) -> dict:
    """The JSON answer (README: Statistics)."""
    fig = answer.figures
    return {
        "municipalities": list(answer.municipalities) if answer.municipalities is not None else None,
        "from": answer.first.isoformat(),
        "to": answer.last.isoformat(),
        "period": answer.unit,
        "min_cell": answer.min_cell,
        "generated_at": rfc3339(answer.generated_at),
        "periods": [
            {
                "period": p.key,
                "from": p.first.isoformat(),
                "to": p.last.isoformat(),
                "measures": {m: {d: fig.value(p.key, m, d) for d in figures.dimensions(m)} for m in figures.MEASURES},
            }
            for p in fig.periods
        ],
        "suppressed": fig.suppressed,
    }


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(value: str) -> str:
    # every text cell is one of our own codes; quoted, and never read as a formula
    if value.startswith(FORMULA_STARTS):
        value = "'" + value
    return '"' + value.replace('"', '""') + '"'


def csv_lines(answer: Answer):
    """`period,measure,dimension,value`, one row per figure; a hidden one has an empty value."""
    yield "period,measure,dimension,value\r\n"
    fig = answer.figures
    for p in fig.periods:
        for measure in figures.MEASURES:
            for dimension in figures.dimensions(measure):
                value = fig.value(p.key, measure, dimension)
                yield (
                    f"{_text_cell(p.key)},{_text_cell(measure)},{_text_cell(dimension)},"
                    f"{'' if value is None else int(value)}\r\n"
                )


def year_window(year: int) -> tuple[date, date]:
    return date(year, 1, 1), date(year, 12, 31)
