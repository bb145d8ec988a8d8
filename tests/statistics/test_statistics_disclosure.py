"""The suppression rule (casesvc/statistics/disclosure.py), pure: property tests over any table
of counts, and the rule's cases one by one."""

from __future__ import annotations

import itertools

from hypothesis import given, settings, strategies as st

from casesvc.statistics.disclosure import COMPLEMENTARY, SMALL, TOTAL, Group, nearest_rank, suppress

MIN = 5


def check_invariants(counts, groups, hidden, min_cell):
    shown = {k: v for k, v in counts.items() if k not in hidden}
    assert not [k for k, v in shown.items() if 0 < v < min_cell], "a small count is shown"
    for group in groups:
        if group.total in hidden:
            continue
        hidden_sum = sum(counts[c] for c in group.cells if c in hidden)
        assert hidden_sum == 0 or hidden_sum >= min_cell, (group, hidden_sum)


@st.composite
def tables(draw):
    """A measure in several periods: per period, dimension groups whose cells add up to the
    period's total; across periods, each cell's periods add up to its whole-window value."""
    periods = draw(st.integers(1, 4))
    names = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))  # cells per dimension name
    small = st.one_of(st.integers(0, 6), st.integers(0, 40))
    counts, groups = {}, []
    base = {}
    for p in range(periods):
        total = None
        for g, size in enumerate(names):
            if total is None:
                cells = draw(st.lists(small, min_size=size, max_size=size))
                total = sum(cells)
            else:  # another split of the same total
                cells = _split(draw, total, size)
            for i, value in enumerate(cells):
                counts[(p, g, i)] = value
            groups.append(Group((p, "total"), tuple((p, g, i) for i in range(size))))
        counts[(p, "total")] = total
        base[p] = total
    for key in list(counts):
        if key[0] == 0:
            rest = key[1:]
            counts[("all", *rest)] = sum(counts[(p, *rest)] for p in range(periods))
            groups.append(Group(("all", *rest), tuple((p, *rest) for p in range(periods))))
    for g, size in enumerate(names):
        groups.append(Group(("all", "total"), tuple(("all", g, i) for i in range(size))))
    return counts, groups


def _split(draw, total, size):
    cuts = sorted(draw(st.lists(st.integers(0, total), min_size=size - 1, max_size=size - 1)))
    edges = [0, *cuts, total]
    return [b - a for a, b in itertools.pairwise(edges)]


@settings(max_examples=400, deadline=None)
@given(tables(), st.integers(1, 8))
def test_no_small_count_is_shown_nor_worked_out_from_a_total(table, min_cell):
    counts, groups = table
    hidden = suppress(counts, groups, min_cell)
    check_invariants(counts, groups, hidden, min_cell)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(st.integers(0, 30), st.integers(0, 12), min_size=1, max_size=12),
    st.lists(st.tuples(st.integers(0, 30), st.lists(st.integers(0, 30), max_size=8)), max_size=6),
    st.integers(1, 8),
)
def test_the_invariants_hold_for_any_counts_and_any_groups(counts, raw_groups, min_cell):
    """Even where cells do not add up to their total: nothing small shows, no group leaks."""
    groups = [Group(t, tuple(dict.fromkeys(c for c in cells if c in counts))) for t, cells in raw_groups if t in counts]
    hidden = suppress(counts, groups, min_cell)
    check_invariants(counts, groups, hidden, min_cell)
    total_keys = {g.total for g in groups}
    assert not [k for k, v in counts.items() if v == 0 and k in hidden and k not in total_keys], "a 0 was hidden"


@settings(max_examples=200, deadline=None)
@given(tables())
def test_only_what_the_rule_needs_is_hidden(table):
    """Every hidden count is small, or was hidden for a group that needed it."""
    counts, groups = table
    hidden = suppress(counts, groups, MIN)
    for key, reason in hidden.items():
        assert (reason == SMALL) == (0 < counts[key] < MIN)
        assert counts[key] > 0 or reason == TOTAL


def test_a_small_cell_and_its_nearest_sibling_are_hidden():
    counts = {"total": 20, "a": 2, "b": 6, "c": 12, "d": 0}
    hidden = suppress(counts, [Group("total", ("a", "b", "c", "d"))], MIN)
    assert hidden == {"a": SMALL, "b": COMPLEMENTARY}


def test_small_cells_that_already_add_up_to_min_cell_need_no_sibling():
    counts = {"total": 20, "a": 2, "b": 3, "c": 15}
    assert suppress(counts, [Group("total", ("a", "b", "c"))], MIN) == {"a": SMALL, "b": SMALL}


def test_zero_is_shown_and_never_taken_as_a_complement():
    counts = {"total": 9, "a": 0, "b": 1, "c": 8}
    assert suppress(counts, [Group("total", ("a", "b", "c"))], MIN) == {"b": SMALL, "c": COMPLEMENTARY}


def test_where_no_sibling_can_protect_the_total_goes_too():
    counts = {"total": 9, "a": 1, "b": 0}  # cells that do not add up: the total still must not tell `a`
    assert suppress(counts, [Group("total", ("a", "b"))], MIN) == {"a": SMALL, "total": TOTAL}


def test_the_periods_of_a_figure_protect_one_another():
    # periods p1 (3) and p2 (10) of a figure whose whole-window value is 13: p1 alone would be
    # 13 − 10; p2 goes too, and its own cells need nothing more once their total is hidden
    counts = {"p1": 3, "p2": 10, "all": 13, "p1.a": 3, "p2.a": 4, "p2.b": 6}
    groups = [Group("all", ("p1", "p2")), Group("p1", ("p1.a",)), Group("p2", ("p2.a", "p2.b"))]
    assert suppress(counts, groups, MIN) == {"p1": SMALL, "p2": COMPLEMENTARY, "p1.a": SMALL, "p2.a": SMALL}


def test_nearest_rank_percentiles():
    values = {1: 1, 4: 1, 5: 2, 10: 1, 20: 1}  # 1 4 5 5 10 20
    assert nearest_rank(values, 50) == 5  # rank 3
    assert nearest_rank(values, 90) == 20  # rank ⌈5.4⌉ = 6
    assert nearest_rank({7: 4}, 50) == 7
    assert nearest_rank({1: 1, 2: 1, 3: 1, 4: 1}, 50) == 2  # the lower middle, never an average
    assert nearest_rank({}, 50) is None
