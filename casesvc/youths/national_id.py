"""Norwegian national identity numbers: fødselsnummer and D-number (DDMMYY III K1 K2).

Both check digits are mod 11. A D-number adds 4 to the first digit of the day. Synthetic
numbers from the national test data (month + 80) are accepted only when allowed by setting,
so test and demo data never need a real person's number.

The number holds the birth date's day, month and two-digit year. The century is not read from
the individual number (III): the birth date given beside the number says it, and `matches`
holds the two together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from casesvc.common.messages import _

_K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


class InvalidNationalId(ValueError):
    pass


@dataclass(frozen=True)
class NationalId:
    number: str
    day: int
    month: int
    year2: int
    is_d_number: bool
    is_synthetic: bool

    def matches(self, birth_date: date) -> bool:
        """Whether the number's day, month and two-digit year are those of `birth_date`."""
        return (birth_date.day, birth_date.month, birth_date.year % 100) == (self.day, self.month, self.year2)


def _check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    check = (11 - remainder) % 11
    return None if check == 10 else check


def check_digits(first_nine: str) -> str | None:
    """The two check digits for nine digits, or None when no valid number has them."""
    k1 = _check_digit(first_nine, _K1_WEIGHTS)
    if k1 is None:
        return None
    k2 = _check_digit(first_nine + str(k1), _K2_WEIGHTS)
    return None if k2 is None else f"{k1}{k2}"


def parse(number: str, allow_synthetic: bool = False) -> NationalId:
    if not isinstance(number, str) or len(number) != 11 or not number.isascii() or not number.isdigit():
        raise InvalidNationalId(_("must be 11 digits"))
    if check_digits(number[:9]) != number[9:]:
        raise InvalidNationalId(_("check digits do not match"))
    day, month, year2 = int(number[0:2]), int(number[2:4]), int(number[4:6])
    is_d = day > 40
    if is_d:
        day -= 40
    synthetic = month > 80
    if synthetic:
        if not allow_synthetic:
            raise InvalidNationalId(_("synthetic test numbers are not accepted here"))
        month -= 80
    try:
        date(2000 + year2, month, day)  # 2000-2099: 29 February exactly when some century has it
    except ValueError as exc:
        raise InvalidNationalId(_("the date part is not a date")) from exc
    return NationalId(number, day, month, year2, is_d, synthetic)


def make(birth_date: date, individual: int, d_number: bool = False, synthetic: bool = False) -> str | None:
    """Build a valid number (for tests and demo data), or None when that individual number has
    no valid check digits."""
    day = birth_date.day + (40 if d_number else 0)
    month = birth_date.month + (80 if synthetic else 0)
    first_nine = f"{day:02d}{month:02d}{birth_date.year % 100:02d}{individual:03d}"
    digits = check_digits(first_nine)
    return None if digits is None else first_nine + digits
