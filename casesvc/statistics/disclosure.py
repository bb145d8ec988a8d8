"""Disclosure control for the statistics (README: Statistics, the suppression rule).

Pure: counts and the groups they form in, the smallest count that may be shown, and out comes
which counts are hidden and why. Nothing here knows measures, periods or the database.

A *group* is a total and the cells that add up to it (the origins of the cases opened in one
period and their total; the periods of one figure and its whole-window value). The rule:

1. a count from 1 to ``min_cell - 1`` is hidden (primary suppression); 0 is shown;
2. in every group whose total is shown, the hidden cells must add up to 0 or to at least
   ``min_cell`` — else total minus the shown cells would tell them; while they do not, the
   smallest shown non-zero cell is hidden too (complementary suppression); when no such cell is
   left, the total is hidden as well;
3. 2 is repeated over all groups until nothing changes (hiding a cell of one group can call for
   more in another group it belongs to). Hiding only ever grows, so this ends.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

SMALL = "small"  # 1 .. min_cell-1
COMPLEMENTARY = "complementary"  # hidden so that a small one cannot be worked out
TOTAL = "total"  # a group's total, where its cells alone could not protect


@dataclass(frozen=True)
class Group:
    total: Hashable
    cells: tuple[Hashable, ...]


def suppress(counts: Mapping[Hashable, int], groups: Iterable[Group], min_cell: int) -> dict[Hashable, str]:
    """The keys of `counts` to hide, each with its reason. Every key a group names must be in
    `counts`. Deterministic: among equal cells, the one named first in the group goes first."""
    if min_cell < 1:
        raise ValueError("min_cell must be at least 1")
    groups = tuple(groups)
    hidden: dict[Hashable, str] = {key: SMALL for key, value in counts.items() if 0 < value < min_cell}
    changed = True
    while changed:
        changed = False
        for group in groups:
            while group.total not in hidden and 0 < _hidden_sum(counts, group, hidden) < min_cell:
                shown = [(counts[c], i) for i, c in enumerate(group.cells) if c not in hidden and counts[c] > 0]
                if shown:
                    hidden[group.cells[min(shown)[1]]] = COMPLEMENTARY
                else:
                    hidden[group.total] = TOTAL
                changed = True
    return hidden


def _hidden_sum(counts: Mapping[Hashable, int], group: Group, hidden: Mapping[Hashable, str]) -> int:
    return sum(counts[c] for c in group.cells if c in hidden)


def nearest_rank(histogram: Mapping[int, int], percent: int) -> int | None:
    """The nearest-rank percentile of the values counted in `histogram` ({value: how many}):
    the value at rank ⌈percent/100 · n⌉ in ascending order — always one of the values, never an
    average (the median of 4 values is the 2nd, of 5 the 3rd). None when there are none."""
    n = sum(histogram.values())
    if n == 0:
        return None
    rank = max(1, -(-percent * n // 100))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable: the ranks stop at n")
