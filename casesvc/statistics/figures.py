"""The measures and their dimensions (README "Statistics"), and the figures of one answer: the grouped
rows of casesvc/statistics/queries.py summed into cells, hidden by the rule of
casesvc/statistics/disclosure.py. Pure apart from the rows it is given."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from casesvc.statistics import disclosure
from casesvc.statistics.periods import ALL, Period
from casesvc.vocabulary import CASE_ORIGINS, DRUG_TEST_RESULTS, LEGAL_BASES, REACTION_TYPES

AGES = ("under_15", "15", "16", "17", "18_plus")
ENDINGS = ("completed", "breached", "cancelled")

# measure -> {dimension name: [dimension, ...]}; every count measure has `total` besides
COUNT_MEASURES: dict[str, dict[str, list[str]]] = {
    "cases_opened": {"origin": [f"origin={o}" for o in CASE_ORIGINS], "age": [f"age={a}" for a in AGES]},
    "reactions_started": {
        "type": [f"type={t}" for t in REACTION_TYPES],
        "legal_basis": [f"legal_basis={b}" for b in LEGAL_BASES],
    },
    "reactions_ended": {"type;status": [f"type={t};status={s}" for t in REACTION_TYPES for s in ENDINGS]},
    "drug_tests": {"result": [f"result={r}" for r in DRUG_TEST_RESULTS]},
    "cases_open_at_end": {},
}
# counts of things that happen: a period's figure adds up to the whole window's
FLOWS = ("cases_opened", "reactions_started", "reactions_ended", "drug_tests")
WAIT_MEASURES = ("days_to_first_reaction", "days_to_first_event")
WAIT_DIMENSIONS = ("n", "median", "p90")
MEASURES = (*COUNT_MEASURES, *WAIT_MEASURES)
SMALL_N = "small_n"  # a median or p90 over fewer than min_cell cases


def dimensions(measure: str) -> list[str]:
    if measure in WAIT_MEASURES:
        return list(WAIT_DIMENSIONS)
    return ["total"] + [d for names in COUNT_MEASURES[measure].values() for d in names]


def age_dimension(age: int) -> str:
    if age < 15:
        return "age=under_15"
    return "age=18_plus" if age >= 18 else f"age={age}"


@dataclass
class Rows:
    """What the queries answered (see casesvc/statistics/queries.py for each shape)."""

    cases_opened: list = field(default_factory=list)
    reactions_started: list = field(default_factory=list)
    reactions_ended: list = field(default_factory=list)
    drug_tests: list = field(default_factory=list)
    openings_and_closings: list = field(default_factory=list)
    days_to_first_reaction: Counter = field(default_factory=Counter)
    days_to_first_event: Counter = field(default_factory=Counter)


@dataclass
class Figures:
    periods: list[Period]  # the window's periods, then the whole window ("all")
    values: dict[tuple[str, str, str], int | None]  # (period, measure, dimension) -> shown value
    suppressed: list[dict]  # {period, measure, dimension, reason}, in answer order

    def value(self, period: str, measure: str, dimension: str) -> int | None:
        return self.values[(period, measure, dimension)]


def build(periods: list[Period], window: Period, rows: Rows, min_cell: int) -> Figures:
    keys = [p.key for p in periods]
    counts: Counter = Counter({(k, m, d): 0 for k in [*keys, ALL] for m in COUNT_MEASURES for d in dimensions(m)})

    def add(period: str, measure: str, n: int, *dims: str) -> None:
        if (period, measure, "total") not in counts or period == ALL:
            raise ValueError(f"a row of period {period!r} outside the window")  # the queries filter by it
        for key in (period, ALL):
            for dimension in ("total", *dims):
                counts[(key, measure, dimension)] += n

    for period, origin, age, n in rows.cases_opened:
        add(period, "cases_opened", n, f"origin={origin}", age_dimension(int(age)))
    for period, kind, basis, n in rows.reactions_started:
        add(period, "reactions_started", n, f"type={kind}", f"legal_basis={basis}")
    for period, kind, status, n in rows.reactions_ended:
        add(period, "reactions_ended", n, f"type={kind};status={status}")
    for period, result, n in rows.drug_tests:
        add(period, "drug_tests", n, f"result={result}")
    # a stock, not a flow: open at the end of each period, and at the end of the window
    position = {key: index for index, key in enumerate(keys)}
    for index, key in enumerate(keys):
        counts[(key, "cases_open_at_end", "total")] = sum(
            n
            for opened, closed, n in rows.openings_and_closings
            if position[opened] <= index and (closed is None or position[closed] > index)
        )
    counts[(ALL, "cases_open_at_end", "total")] = sum(
        n for _, closed, n in rows.openings_and_closings if closed is None
    )
    histograms: dict[tuple[str, str], Counter] = {}
    for measure in WAIT_MEASURES:
        for key in (*keys, ALL):
            histograms[(key, measure)] = Counter()
        for (period, days), n in getattr(rows, measure).items():
            for key in (period, ALL):
                histograms[(key, measure)][days] += n
        for key in (*keys, ALL):
            counts[(key, measure, "n")] = sum(histograms[(key, measure)].values())

    hidden = disclosure.suppress(counts, _groups(keys), min_cell)
    values: dict[tuple[str, str, str], int | None] = {}
    suppressed: list[dict] = []
    for key in (*keys, ALL):
        for measure in MEASURES:
            for dimension in dimensions(measure):
                cell = (key, measure, dimension)
                reason = hidden.get(cell)
                if dimension in ("median", "p90"):
                    n = counts[(key, measure, "n")]
                    value = disclosure.nearest_rank(histograms[(key, measure)], 50 if dimension == "median" else 90)
                    reason = SMALL_N if 0 < n < min_cell else None
                else:
                    value = counts[cell]
                values[cell] = None if reason else value
                if reason:
                    suppressed.append({"period": key, "measure": measure, "dimension": dimension, "reason": reason})
    whole = Period(ALL, window.first, window.last)
    return Figures([*periods, whole], values, suppressed)


def _groups(keys: list[str]) -> list[disclosure.Group]:
    """Within a period, each dimension name's cells with the measure's total; across periods,
    each flow figure's periods with its whole-window value (else the window's figure minus the
    shown periods would tell a hidden one)."""
    groups = []
    for key in (*keys, ALL):
        for measure, names in COUNT_MEASURES.items():
            for cells in names.values():
                groups.append(disclosure.Group((key, measure, "total"), tuple((key, measure, c) for c in cells)))
    for measure in FLOWS:
        for dimension in dimensions(measure):
            groups.append(disclosure.Group((ALL, measure, dimension), tuple((k, measure, dimension) for k in keys)))
    for measure in WAIT_MEASURES:
        groups.append(disclosure.Group((ALL, measure, "n"), tuple((k, measure, "n") for k in keys)))
    return groups
