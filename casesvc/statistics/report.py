"""The printable report (README "Statistics"): one municipality, one year, per
quarter, in bokmål, as tables and inline SVG bar charts. No script and no external asset: the
page is whole on its own and prints as it shows."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

from casesvc.common.timeutil import OSLO
from casesvc.statistics import figures
from casesvc.statistics.periods import ALL
from casesvc.vocabulary import VOCABULARY

_env = Environment(
    loader=PackageLoader("casesvc.statistics", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

MONTHS = (
    "januar",
    "februar",
    "mars",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "desember",
)
AGE_LABELS = {"under_15": "Under 15 år", "15": "15 år", "16": "16 år", "17": "17 år", "18_plus": "18 år og over"}
MEASURE_TITLES = {
    "cases_opened": "Saker opprettet",
    "reactions_started": "Reaksjoner startet",
    "reactions_ended": "Reaksjoner avsluttet",
    "drug_tests": "Rusprøver",
    "cases_open_at_end": "Åpne saker ved periodens slutt",
    "days_to_first_reaction": "Dager fra opprettelse til første reaksjon",
    "days_to_first_event": "Dager fra opprettelse til første oppfølging",
}
WAIT_LABELS = {"n": "Antall saker", "median": "Median (dager)", "p90": "90-persentil (dager)"}
HIDDEN = "skjult"
_GROUP_TITLES = {
    "origin": "hvem som meldte saken",
    "type": "type reaksjon",
    "type;status": "type og utfall",
    "result": "resultat",
}
NONE = "–"  # no value at all (a median over no case), which is not a hidden one


def long_date(day) -> str:
    return f"{day.day}. {MONTHS[day.month - 1]} {day.year}"


def _label(dimension: str) -> str:
    """A bokmål label for a dimension such as `origin=police` or `type=drug_contract;status=breached`."""
    parts = []
    for part in dimension.split(";"):
        name, _, code = part.partition("=")
        group = {
            "origin": "case_origin",
            "type": "reaction_type",
            "legal_basis": "legal_basis",
            "result": "drug_test_result",
            "status": "reaction_status",
        }.get(name)
        if name == "age":
            parts.append(AGE_LABELS[code])
        elif group:
            parts.append(VOCABULARY[group][code][0])
        else:
            parts.append("Totalt" if dimension == "total" else dimension)
    return " – ".join(parts)


def _quarter_label(key: str) -> str:
    return "Hele året" if key == ALL else f"{key[-1]}. kvartal"


def _cell(fig, hidden: set, period: str, measure: str, dimension: str) -> str:
    value = fig.value(period, measure, dimension)
    if value is None:
        return HIDDEN if (period, measure, dimension) in hidden else NONE
    return str(value)


def _table(fig, hidden: set, measure: str, dims: list[str], keys: list[str]) -> dict:
    return {
        "columns": [_quarter_label(k) for k in keys],
        "rows": [
            {
                "label": _label(d) if measure not in figures.WAIT_MEASURES else WAIT_LABELS[d],
                "cells": [_cell(fig, hidden, k, measure, d) for k in keys],
            }
            for d in dims
        ],
    }


def _chart(items: list[tuple[str, int | None, str]], width: int = 640, bar: int = 18, gap: int = 8, label_w: int = 230):
    """A horizontal bar chart as SVG geometry: the template draws it."""
    shown = [v for _, v, _ in items if v is not None]
    top = max(shown, default=0) or 1
    span = width - label_w - 60
    bars = []
    for i, (label, value, text) in enumerate(items):
        y = i * (bar + gap)
        length = 0 if value is None else round(span * value / top, 1)
        bars.append(
            {
                "label": label,
                "y": y,
                "text_y": y + bar - 5,
                "length": length,
                "x": label_w,
                "value_x": label_w + length + 6,
                "value": text,
                "hidden": text == HIDDEN,
            }
        )
    return {"width": width, "height": max(1, len(items)) * (bar + gap), "bar": bar, "bars": bars, "label_w": label_w}


def context(answer) -> dict:
    fig = answer.figures
    hidden = {(s["period"], s["measure"], s["dimension"]) for s in fig.suppressed}
    keys = [p.key for p in fig.periods]

    def item(label, period, measure, dimension):
        return label, fig.value(period, measure, dimension), _cell(fig, hidden, period, measure, dimension)

    quarters = [k for k in keys if k != ALL]
    sections = []
    for measure in figures.MEASURES:
        dims = figures.dimensions(measure)
        tables = []
        if measure in figures.WAIT_MEASURES:
            tables.append(_table(fig, hidden, measure, dims, keys))
            chart_items = [item(_quarter_label(k), k, measure, "median") for k in keys]
            chart_title = "Median per kvartal (dager)"
        elif measure == "cases_open_at_end":
            tables.append(_table(fig, hidden, measure, dims, keys))
            chart_items = [item(_quarter_label(k), k, measure, "total") for k in quarters]
            chart_title = "Åpne saker ved slutten av hvert kvartal"
        else:
            tables.append(_table(fig, hidden, measure, ["total"], keys))
            for cells in figures.COUNT_MEASURES[measure].values():
                tables.append(_table(fig, hidden, measure, cells, keys))
            first_group = next(iter(figures.COUNT_MEASURES[measure].values()))
            chart_items = [item(_label(d), ALL, measure, d) for d in first_group]
            chart_title = "Hele året, fordelt på " + _GROUP_TITLES[next(iter(figures.COUNT_MEASURES[measure]))]
        sections.append(
            {
                "id": measure,
                "title": MEASURE_TITLES[measure],
                "tables": tables,
                "chart": _chart(chart_items),
                "chart_title": chart_title,
            }
        )
    made = answer.generated_at.astimezone(OSLO)
    return {
        "municipality": answer.municipalities[0] if answer.municipalities else "",
        "year": answer.first.year,
        "first": long_date(answer.first),
        "last": long_date(answer.last),
        "made": f"{long_date(made.date())} kl. {made:%H:%M}",
        "min_cell": answer.min_cell,
        "below": answer.min_cell - 1,
        "hidden": HIDDEN,
        "none": NONE,
        "suppressed": len(fig.suppressed),
        "sections": sections,
    }


def render(answer) -> str:
    return _env.get_template("statistics/report.html").render(**context(answer))
